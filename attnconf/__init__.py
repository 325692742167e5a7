"""attnconf: a conformance suite for attention kernels and sinusoidal positional encodings.

`import attnconf` needs only NumPy: frameworks are imported inside their adapters.
Subpackages: `attnconf.spec` (normative text and clause index), `attnconf.reference`
(the canonical NumPy implementation), `attnconf.adapters`, `attnconf.conformance`.

Why a checkout installs an import-system finder (`_CheckoutFinder`) rather than something simpler:
the subpackages are sibling folders of this one (the design card's top-level layout), and an
editable install does not help the case the finder exists for (a checkout run without any install,
test_packaging). Putting the checkout root on `attnconf.__path__` would map the four folders (their
names are the subpackage names) but also every other entry of the root: `attnconf.tests`,
`attnconf.docs`, `attnconf.build` (a namespace package over old build output) would import, which the
installed package has not. Creating each subpackage here with `importlib.util.spec_from_file_location`
and putting it in sys.modules works without a finder only by executing all four `__init__`s on every
`import attnconf` (the installed package imports them lazily), in an order that can meet import cycles
while this module is half-initialised. The finder maps exactly the four names, lazily, as setuptools'
package-dir does; it is found again by its class name because a reloaded `attnconf` defines a new class.
"""

__version__ = "0.1.0"
SUITE_VERSION = __version__

__all__ = ["__version__", "SUITE_VERSION"]


def _map_source_checkout() -> None:
    """Make `attnconf.spec`, `.reference`, `.adapters`, `.conformance` importable from a checkout.

    The product's top-level folders install under `attnconf` (pyproject's package-dir). When this
    `attnconf/` folder is imported straight from a source checkout — `python -m attnconf` run in
    the repository root puts the checkout first on sys.path, shadowing an installed copy — the
    sibling folders are mapped the same way here, so the checkout works as installed.
    """
    import importlib.abc
    import importlib.util
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folders = {f"{__name__}.{sub}": os.path.join(root, folder)
               for sub, folder in (("spec", "spec"), ("reference", "reference"),
                                   ("adapters", "adapters"), ("conformance", "conformance"))}
    if not (os.path.isfile(os.path.join(root, "pyproject.toml"))
            and all(os.path.isfile(os.path.join(d, "__init__.py")) for d in folders.values())):
        return  # an installed copy: setuptools laid the subpackages out already

    class _CheckoutFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            folder = folders.get(fullname)
            if folder is None:
                return None
            return importlib.util.spec_from_file_location(
                fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])

    if not any(type(f).__name__ == "_CheckoutFinder" for f in sys.meta_path):
        sys.meta_path.append(_CheckoutFinder())


_map_source_checkout()
