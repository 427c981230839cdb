"""HTTP transport shared by the destination clients: retries, limits, breaker, redaction.

Each vendor client subclasses :class:`ApiClient` and overrides the hooks that read its error
format (:meth:`ApiClient.error_detail`), recognise throttling (:meth:`ApiClient.is_throttled`)
and react to quota headers (:meth:`ApiClient.observe`).

Outcome of :meth:`ApiClient.request`:

- an expected 2xx: the response;
- 429 / throttling, 5xx, timeouts, connection errors: retried with backoff + jitter, honouring
  ``Retry-After``; when the attempts run out or the circuit opens ->
  :class:`~workbench.sync.errors.DestinationUnavailable`;
- any other status: :class:`~workbench.sync.errors.ApiError` at once (not retried).

Messages never contain secrets: URLs are reduced to their path and every text goes through
:data:`~workbench.secrets.REDACTOR`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from workbench.secrets import REDACTOR
from workbench.sync.errors import ApiError, DestinationUnavailable
from workbench.sync.retry import CircuitBreaker, RateLimiter, parse_retry_after
from workbench.sync.settings import SyncSettings

log = logging.getLogger(__name__)

__all__ = ["ApiClient"]

# Request head and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
# and delayed ACKs add ~40 ms to every request with a body.
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
_RETRY_STATUSES = frozenset({500, 502, 503, 504, 520, 522, 524})


class ApiClient:
    """One destination's HTTP client.

    Parameters
    ----------
    name : str
        Export name (for messages and the breaker).
    base_url : str
        Scheme, host and base path; request paths are appended.
    settings : SyncSettings
        Timeouts and retry policy.
    headers : Mapping, optional
        Headers sent with every request (auth included; never logged).
    auth : httpx.Auth or tuple, optional
        httpx auth (Mailchimp basic auth).
    max_in_flight : int
        Concurrent requests allowed (Mailchimp: 10 per account).
    breaker : CircuitBreaker, optional
        Shared breaker; a new one with ``settings.breaker_threshold`` by default.
    """

    vendor = "destination"

    def __init__(
        self,
        name: str,
        base_url: str,
        settings: SyncSettings,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        max_in_flight: int = 10,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.policy = settings.retry
        self.breaker = breaker or CircuitBreaker(name, settings.breaker_threshold)
        self.requests = 0
        self.retries = 0
        self._count_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=10)
        self._client = httpx.Client(
            headers=dict(headers or {}),
            auth=auth,
            timeout=httpx.Timeout(settings.timeout),
            transport=httpx.HTTPTransport(limits=limits, socket_options=_SOCKET_OPTIONS),
            follow_redirects=False,
        )

    # ----------------------------------------------------------------- vendor hooks
    def error_detail(self, response: httpx.Response) -> str:
        """The vendor's error message from an error response (override per vendor)."""
        return response.text[:300]

    def is_throttled(self, response: httpx.Response) -> bool:
        """Whether the response means "slow down" (HTTP 429 unless the vendor says more)."""
        return response.status_code == 429

    def is_server_error(self, response: httpx.Response) -> bool:
        """Whether the response is a transient server-side failure worth retrying."""
        return response.status_code in _RETRY_STATUSES

    def is_config_error(self, response: httpx.Response) -> bool:
        """Whether an error response means the setup is wrong (credentials, ids)."""
        return response.status_code in {401, 403, 404}

    def observe(self, response: httpx.Response, limiter: RateLimiter | None) -> None:
        """Look at quota headers of any response (override to pause ``limiter``)."""

    # ----------------------------------------------------------------- transport
    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def where(self, method: str, path: str) -> str:
        """Location text for messages: destination, method and path (no query string)."""
        return f"{self.name} ({self.vendor}): {method} {path.split('?', 1)[0]}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        expected: tuple[int, ...] = (200, 201, 202, 204),
    ) -> httpx.Response:
        """Send one request with retries; see the module docstring for the outcomes.

        Raises
        ------
        DestinationUnavailable
            Attempts exhausted, ``Retry-After`` too long, or the circuit is open.
        ApiError
            A non-retryable error status.
        """
        where = self.where(method, path)
        last = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            if self.breaker.is_open:
                raise DestinationUnavailable(
                    f"stopped after {self.breaker.failures} consecutive failures "
                    f"(last: {self.breaker.last_error})",
                    where=where,
                    fix="check the destination's status and network access, then sync again",
                )
            if limiter is not None and self.settings.rate_limits:
                limiter.acquire()
            wait: float | None = None
            try:
                with self._slots:
                    with self._count_lock:
                        self.requests += 1
                    response = self._client.request(
                        method,
                        self.base_url + path,
                        json=json,
                        data=data,
                        params=params,
                        headers=headers,
                    )
            except httpx.TimeoutException:
                last = f"timed out after {self.settings.timeout:g} s"
                self.breaker.record_failure(last)
            except httpx.TransportError as exc:
                last = REDACTOR.redact(f"connection failed ({type(exc).__name__}: {exc})")
                self.breaker.record_failure(last)
            else:
                self.observe(response, limiter)
                status = response.status_code
                if status in expected:
                    self.breaker.record_success()
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if self.is_throttled(response):
                    last = f"HTTP {status} rate limited: {self._detail(response)}"
                    wait = retry_after
                elif self.is_server_error(response):
                    last = f"HTTP {status}: {self._detail(response)}"
                    wait = retry_after
                    self.breaker.record_failure(last)
                else:
                    self.breaker.record_success()
                    raise ApiError(
                        status,
                        self._detail(response),
                        where=where,
                        body=_body(response),
                        config=self.is_config_error(response),
                    )
                if wait is not None and wait > self.policy.max_retry_after:
                    raise DestinationUnavailable(
                        f"asked to wait {wait:.0f} s ({last})",
                        where=where,
                        fix="the quota is exhausted for now; sync again later",
                    )
            if attempt == self.policy.max_attempts:
                break
            delay = self.policy.backoff(attempt)
            if wait is not None:
                delay = max(delay, wait)
            with self._count_lock:
                self.retries += 1
            log.warning(
                "%s: %s; retry %d/%d in %.2f s",
                where,
                last,
                attempt,
                self.policy.max_attempts - 1,
                delay,
            )
            time.sleep(delay)
        raise DestinationUnavailable(
            f"failed after {self.policy.max_attempts} attempts (last: {last})",
            where=where,
            fix="check the destination's status and network access, then sync again; "
            "members not acknowledged stay pending and are sent next time",
        )

    def _detail(self, response: httpx.Response) -> str:
        try:
            text = self.error_detail(response)
        except (ValueError, KeyError, TypeError, AttributeError):
            text = response.text[:300]
        return REDACTOR.redact(text)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
