"""The `attnconf` command: a dispatcher over subcommands, each in `attnconf.commands.<name>`.

Each command module defines `register(subparsers)`, which adds its parser and sets
`func=<callable(args) -> int>`. Errors derived from AttnconfError print one line and exit 2;
other exceptions print one line too unless `--debug` is given. Exit codes: attnconf.errors.EXIT_CODES
(shown by `attnconf --help`). However a command ends (Ctrl-C, SIGTERM, an error), every results
file still being written is flushed first (results.files.flush_open), marked incomplete. A reader
of stdout that goes away (`| head`) never changes the exit status: output is dropped, the verdict kept.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from attnconf.streams import PipeGuard, stdout_gone

# Subcommand modules, imported lazily so that `attnconf --help` needs only NumPy.
COMMANDS = ("run", "adapters", "golden", "report", "bench", "expectations", "verify_outputs",
            "accuracy", "calibrate")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too; keep it short)
        sys.stderr.write(f"attnconf: {message} (see 'attnconf --help')\n")
        raise SystemExit(2)


def exit_codes_text() -> str:
    from attnconf.errors import EXIT_CODES

    return "exit status:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


def _on_signal(signum, frame):
    from attnconf.errors import Interrupted

    raise Interrupted(signum)


def _catch_termination() -> dict:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the results written so far reach the disk.
    Returns the handlers replaced ({signal: old handler}) for main() to put back."""
    import signal

    replaced = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_DFL:
                replaced[sig] = signal.signal(sig, _on_signal)
        except (ValueError, OSError):   # not the main thread (an embedding program): leave it
            break
    return replaced


def _restore(replaced: dict) -> None:
    import signal

    for sig, handler in replaced.items():
        signal.signal(sig, handler)


def _flush_results() -> list:
    from attnconf.conformance.results import files

    return files.flush_open()


def build_parser() -> argparse.ArgumentParser:
    from attnconf import __version__

    # RawDescriptionHelpFormatter keeps the epilog's table: the description is wrapped here
    parser = _Parser(prog="attnconf", description=textwrap.fill(
        "Conformance suite for attention kernels and position encodings: scaled dot-product attention "
        "(masks, causal alignment, GQA, kernel options: windows, soft-capping, sinks, ALiBi, decode, ragged "
        "lengths; gradients), multi-head attention, sinusoidal encodings, rotary embeddings (RoPE), ALiBi, "
        "T5 and Shaw relative positions and learned position ids, judged against exact golden values by "
        "one tolerance rule; bundled adapters for PyTorch, JAX, TensorFlow/Keras, HF transformers, "
        "keras-hub and onnxruntime, or plug in your own."),
                     epilog=exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"attnconf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"attnconf.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    replaced = _catch_termination()
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PipeGuard(streams[0]), PipeGuard(streams[1])
    try:
        return _call(args)
    finally:
        sys.stdout, sys.stderr = streams
        _restore(replaced)


def _call(args) -> int:
    from attnconf.errors import AttnconfError

    try:
        return int(args.func(args) or 0)
    except AttnconfError as exc:
        _flush_results()
        if args.debug:
            raise
        _stderr(f"attnconf: {exc}")
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", 2)
        paths = _flush_results()
        kept = f"; records judged so far are in {', '.join(map(str, paths))} (incomplete)" if paths else ""
        _stderr(f"attnconf: interrupted{kept}")
        return 128 + signum
    except RecursionError:   # hostile input (JSON nested 100 000 deep) read somewhere not guarded
        _flush_results()
        if args.debug:
            raise
        _stderr("attnconf: an input file should be a document attnconf reads, but it nests deeper than "
                "Python can follow (RecursionError)")
        return 2
    except BrokenPipeError:  # output piped into `head` and closed, outside a command's own guard
        stdout_gone()
        _flush_results()
        return 0
    except Exception as exc:  # an attnconf bug: still one line unless --debug
        _flush_results()
        if args.debug:
            raise
        _stderr(f"attnconf: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return 3


def _stderr(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):   # stderr closed too: the exit status still says it
        pass
