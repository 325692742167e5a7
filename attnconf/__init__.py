"""attnconf: a conformance suite for attention kernels and sinusoidal positional encodings.

`import attnconf` needs only NumPy: frameworks are imported inside their adapters.
Subpackages: `attnconf.spec` (normative text and clause index), `attnconf.reference`
(the canonical NumPy implementation), `attnconf.adapters`, `attnconf.conformance`.
"""

__version__ = "0.1.0"
SUITE_VERSION = __version__

__all__ = ["__version__", "SUITE_VERSION"]
