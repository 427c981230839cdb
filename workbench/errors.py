"""Errors the workbench reports to users: what went wrong, where, and how to fix it."""

from __future__ import annotations


class WorkbenchError(Exception):
    """An error with a message meant for the user, never a bare traceback.

    Parameters
    ----------
    what : str
        What went wrong, in one sentence.
    where : str, optional
        The file, column, key path or row concerned.
    fix : str, optional
        How to fix it.
    """

    exit_code = 2

    def __init__(self, what: str, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The full message: ``where: what. Fix: fix``."""
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f"\n  how to fix: {self.fix}"
        return text


class ParamsError(WorkbenchError):
    """The params file or an override is invalid."""


class InputDataError(WorkbenchError):
    """An input file cannot be read or lacks what the workbench needs."""


class RunLockedError(WorkbenchError):
    """Another run with the same name is in progress."""

    exit_code = 3


class StepFailedError(WorkbenchError):
    """A pipeline step (notebook) failed."""

    exit_code = 1


class SegmentSpecError(WorkbenchError):
    """A segment file is invalid: unknown field, bad value, or a name the data does not have."""

    exit_code = 2
