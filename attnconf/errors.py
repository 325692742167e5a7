"""The exceptions every part of attnconf raises, and what each means to a user.

Must not import any framework.
"""


class AttnconfError(Exception):
    """Base class. The CLI prints `attnconf: <message>` on one line and exits with `exit_code`."""

    exit_code = 2


class UsageError(AttnconfError):
    """Bad command line, bad file, bad plug-in path: the user's input was wrong (exit 2)."""


class SetupError(AttnconfError):
    """The environment cannot do what was asked: framework missing, file unreadable (exit 2)."""


class ResultsWriteError(AttnconfError):
    """The results file (or report) could not be written: disk full, permissions changed (exit 4).
    The file keeps the last complete version written (files are replaced atomically)."""

    exit_code = 4


class Interrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP, raised in the main thread like Ctrl-C's KeyboardInterrupt so that every exit
    path writes what was judged; the CLI exits 128 + signal (SIGINT 130, SIGTERM 143)."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


# Documented in `attnconf --help` and README "Exit status".
EXIT_CODES = {0: "every judged record conforms or is expected", 1: "a non-conformance was found",
              2: "usage or setup error, or a run that judged nothing",
              3: "internal error (an attnconf bug; --debug shows the traceback)",
              4: "the results file or report could not be written (it keeps what was written before)",
              130: "interrupted (Ctrl-C; 143 for SIGTERM): the results file holds every judged record, "
                   "marked incomplete"}


def safe_str(exc: BaseException) -> str:
    """str(exc), or a note saying why there is none: a plug-in's exception whose __str__ raises
    must still become that case's record, not end the run."""
    try:
        return str(exc)
    except BaseException as inner:  # noqa: BLE001 - whatever its __str__ raises
        if isinstance(inner, KeyboardInterrupt):
            raise
        return f"<str() of the exception raised {type(inner).__name__}>"


class Unsupported(AttnconfError):
    """An implementation does not support an operation or option.

    Reported as `skip` with the reason; never counted as a pass.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# A plug-in declines a case by raising NotImplementedError, Python's own word for "not supported"
# (ONNX's backend runner skips on BackendIsNotSupposedToImplementIt alike). The record is `skip`
# with message "declined: <the exception's message>", told apart from attnconf's own
# "unsupported: …" skips (capabilities, `require`); every other exception stays `error`.
DECLINED = "declined"


def is_declined(exc: BaseException) -> bool:
    """Whether an exception an implementation raised declines the case (NotImplementedError)."""
    return isinstance(exc, NotImplementedError)


def declined_reason(exc: BaseException) -> str:
    """The declining exception's message on one line (its type name when it has none)."""
    text = " ".join(safe_str(exc).split())
    return text or f"{type(exc).__name__} raised without a message"


def one_line(exc: BaseException, limit: int = 400) -> str:
    """`TypeName: first line of the message`, the form an error record's message takes, whichever
    executor caught the exception (in-process or in a worker: the records must read alike)."""
    lines = safe_str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def declined_message(reason: str) -> str:
    """The skip message of a declined record: 'declined: <reason>'."""
    return f"{DECLINED}: {reason}"
