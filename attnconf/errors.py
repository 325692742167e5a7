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
