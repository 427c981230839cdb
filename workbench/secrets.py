"""Secrets (API keys, database URLs): read from the environment or a git-ignored ``.env``.

They are never taken from params, and never printed, logged or written to outputs.

:func:`resolve_secret` looks a variable up in ``os.environ`` first, then in ``.env`` files (the
project root's, then the working directory's) without modifying the environment.
:class:`Redactor` replaces every secret it has seen (and ``access_token=`` style query values)
in text; :func:`redacting_logs` installs it as a logging filter on the sync and httpx loggers
for the duration of a sync so that no log record can carry a key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from dotenv import dotenv_values

from workbench import config
from workbench.errors import WorkbenchError

__all__ = ["REDACTOR", "Redactor", "redacting_logs", "resolve_secret"]

_QUERY_SECRET = re.compile(
    r"(?i)((?:access_token|api_key|apikey|key|token|client_secret|password)=)[^&\s\"']+"
)
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)([^'\"\n]+)")
_LOGGERS = ("workbench.sync", "httpx", "httpcore")


class Redactor:
    """Masks known secret values and credential-looking URL parameters in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Remember a secret value (values shorter than 4 characters are ignored)."""
        if secret and len(secret) >= 4:
            with self._lock:
                self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """``text`` with secrets, ``access_token=...`` values and auth headers masked."""
        if not text:
            return text
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, "***")
        text = _QUERY_SECRET.sub(r"\1***", text)
        return _AUTH_HEADER.sub(r"\1***", text)


#: The process-wide redactor every sync component registers secrets with.
REDACTOR = Redactor()


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = self.redactor.redact(message)
        record.args = ()
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        return True


@contextlib.contextmanager
def redacting_logs(redactor: Redactor = REDACTOR) -> Iterator[None]:
    """Redact every record of the sync loggers and of httpx / httpcore while active."""
    filt = _RedactingFilter(redactor)
    names = list(_LOGGERS) + [
        name for name in logging.root.manager.loggerDict if name.startswith("workbench.sync.")
    ]
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(filt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(filt)


def _dotenv_files() -> list[Path]:
    files = [config.PROJECT_DIR / ".env", Path.cwd() / ".env"]
    seen: list[Path] = []
    for path in files:
        if path.is_file() and path.resolve() not in seen:
            seen.append(path.resolve())
    return seen


def resolve_secret(
    variable: str | None,
    *,
    where: str,
    kind: str,
    error: type[WorkbenchError] = WorkbenchError,
) -> str:
    """The value of the environment variable ``variable`` (or of that key in ``.env``).

    The value is registered with :data:`REDACTOR`, so it is masked wherever it could surface.

    Parameters
    ----------
    variable : str or None
        Name of the variable (e.g. ``ExportSpec.api_key_env``).
    where : str
        The params key naming the variable, for the error message.
    kind : str
        What the secret is (``"Mailchimp API key"``), for the error message.
    error : type
        The :class:`WorkbenchError` subclass to raise.

    Raises
    ------
    WorkbenchError
        When no variable is configured or it is unset / empty. The message names the
        variable, never a value.
    """
    if not variable:
        raise error(
            f"no environment variable is configured for the {kind}",
            where=where,
            fix="set api_key_env to the name of an environment variable holding the secret",
        )
    value = os.environ.get(variable)
    if not value:
        for path in _dotenv_files():
            value = dotenv_values(path).get(variable)
            if value:
                break
    if not value:
        raise error(
            f"environment variable {variable} (the {kind}) is not set",
            where=where,
            fix=f"export {variable}=... in the shell, or add a line {variable}=... to the "
            "project's git-ignored .env file",
        )
    REDACTOR.add(value)
    return value
