"""The `attnconf` command: a dispatcher over subcommands, each in `attnconf.commands.<name>`.

Each command module defines `register(subparsers)`, which adds its parser and sets
`func=<callable(args) -> int>`. Errors derived from AttnconfError print one line and exit 2;
other exceptions print one line too unless `--debug` is given.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, imported lazily so that `attnconf --help` needs only NumPy.
COMMANDS = ("run", "adapters", "golden", "report", "bench", "expectations", "verify_outputs",
            "accuracy", "calibrate")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too; keep it short)
        sys.stderr.write(f"attnconf: {message} (see 'attnconf --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from attnconf import __version__

    parser = _Parser(prog="attnconf", description=(
        "Conformance suite for attention kernels and position encodings: scaled dot-product attention "
        "(masks, causal alignment, GQA, kernel options: windows, soft-capping, sinks, ALiBi, decode, ragged "
        "lengths; gradients), multi-head attention, sinusoidal encodings, rotary embeddings (RoPE), ALiBi, "
        "T5 and Shaw relative positions and learned position ids, judged against exact golden values by "
        "one tolerance rule; bundled adapters for PyTorch, JAX, TensorFlow/Keras, HF transformers, "
        "keras-hub and onnxruntime, or plug in your own."))
    parser.add_argument("--version", action="version", version=f"attnconf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"attnconf.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    from attnconf.errors import AttnconfError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AttnconfError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"attnconf: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("attnconf: interrupted\n")
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # an attnconf bug: still one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"attnconf: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)\n")
        return 3
