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
    text = " ".join(str(exc).split())
    return text or f"{type(exc).__name__} raised without a message"


def one_line(exc: BaseException, limit: int = 400) -> str:
    """`TypeName: first line of the message`, the form an error record's message takes, whichever
    executor caught the exception (in-process or in a worker: the records must read alike)."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def declined_message(reason: str) -> str:
    """The skip message of a declined record: 'declined: <reason>'."""
    return f"{DECLINED}: {reason}"
