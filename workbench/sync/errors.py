"""Errors of the sync layer: user-facing ones subclass :class:`WorkbenchError`."""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError


class SyncConfigError(WorkbenchError):
    """The sync cannot start: unknown segment or destination, missing secret or id."""


class SyncInputError(WorkbenchError):
    """The run folder lacks the tables the sync reads (segments, customers)."""


class SyncError(WorkbenchError):
    """One or more destinations failed; the others were synced.

    Attributes
    ----------
    result : dict
        The full :func:`workbench.sync.run_sync` result, with per-destination status.
    """

    exit_code = 1

    def __init__(
        self,
        what: str,
        where: str | None = None,
        fix: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(what, where, fix)
        self.result = result or {}


class DestinationUnavailable(WorkbenchError):
    """A destination did not answer usefully after retries, or its circuit is open."""


class ApiError(WorkbenchError):
    """A destination rejected a request (a 4xx that retrying cannot fix).

    Attributes
    ----------
    status : int
        HTTP status code.
    detail : str
        The vendor's error message (secrets redacted).
    body : Any
        The parsed error body, for row-level attribution (e.g. Google field violations).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        where: str,
        body: Any = None,
        fix: str | None = None,
        config: bool | None = None,
    ) -> None:
        if config is None:
            config = status in {401, 403, 404}
        if config and fix is None:
            fix = "check the API key / token (its variable and scopes) and the ids in the params"
        super().__init__(f"HTTP {status}: {detail}", where=where, fix=fix)
        self.status = status
        self.detail = detail
        self.body = body
        self.config = config

    @property
    def is_config_problem(self) -> bool:
        """True for authentication, permission and not-found errors (fix the setup, not rows)."""
        return self.config
