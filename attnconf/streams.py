"""Output streams whose reader may go away (`attnconf run … | head`): what a command prints must
never change its exit status, which is its verdict. Shared by the CLI and the commands; imports
nothing of attnconf."""
from __future__ import annotations

import sys


def stdout_gone() -> None:
    """stdout's reader went away (`attnconf run | head`): send the rest of the output nowhere, so
    neither later prints nor Python's flush at exit fail; the exit status stays the command's."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class PipeGuard:
    """A text stream (stdout, stderr) whose reader may go away (`attnconf run … 2>&1 | head`): what
    is written after that is dropped, so that no progress line or summary ends a command, or
    turns its verdict into another exit status."""

    def __init__(self, stream):
        self._stream = stream
        self.gone = False

    def write(self, text):
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._went()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._went()

    def _went(self):
        self.gone = True
        try:   # Python's own flush at exit must not fail on it either
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)
