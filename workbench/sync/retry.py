"""Retry timing, rate limiting and circuit breaking for destination clients.

- :class:`RetryPolicy`: exponential backoff with jitter, capped; ``Retry-After`` wins when the
  server sends one (up to ``max_retry_after``).
- :class:`RateLimiter`: fixed windows (e.g. Klaviyo burst 10/s + steady 150/min, Google
  300/min); :meth:`RateLimiter.acquire` blocks until a request may go out.
- :class:`CircuitBreaker`: counts consecutive failed attempts (timeouts, connection errors,
  5xx) of one destination; once open, that destination stops while the others go on.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["CircuitBreaker", "RateLimiter", "RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed request.

    Parameters
    ----------
    max_attempts : int
        Attempts per request, the first included.
    base_delay : float
        Seconds before the first retry; doubles per attempt.
    max_delay : float
        Cap of the computed backoff, seconds.
    max_retry_after : float
        Longest ``Retry-After`` honoured, seconds; a longer one ends the retries.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number ``attempt`` (1-based): capped exponential, jittered.

        "Equal jitter": half the capped exponential delay plus a uniform random half, so
        retries of many clients spread out but never come back immediately.
        """
        rng = rng or random
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return cap / 2 + rng.uniform(0, cap / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class RateLimiter:
    """Client-side limiter over one or more windows, e.g. ``[(10, 1.0), (150, 60.0)]``.

    Parameters
    ----------
    windows : list of (int, float)
        ``(max_requests, seconds)`` pairs; a request goes out only when every window has room
        (sliding-log accounting, so no burst at a window edge exceeds the limit).
    """

    def __init__(self, windows: list[tuple[int, float]]) -> None:
        self.windows = [(int(n), float(s)) for n, s in windows]
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._pause_until = 0.0
        self._horizon = max((s for _, s in self.windows), default=0.0)

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] > self._horizon:
                    self._sent.popleft()
                wait = max(0.0, self._pause_until - now)
                for limit, seconds in self.windows:
                    in_window = [t for t in self._sent if now - t < seconds]
                    if len(in_window) >= limit:
                        wait = max(wait, seconds - (now - in_window[-limit]))
                if wait <= 0:
                    self._sent.append(now)
                    return waited
            time.sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (e.g. the server said the quota is used up)."""
        with self._lock:
            self._pause_until = max(self._pause_until, time.monotonic() + max(0.0, seconds))


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failed attempts; a success closes it again.

    Parameters
    ----------
    name : str
        The destination, for messages.
    threshold : int
        Consecutive failures (timeouts, connection errors, 5xx) that open the circuit.
    """

    def __init__(self, name: str, threshold: int = 8) -> None:
        self.name = name
        self.threshold = threshold
        self.failures = 0
        self.last_error: str | None = None
        self._open = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """Whether the destination is considered down for the rest of this sync (sticky)."""
        return self._open

    def record_failure(self, reason: str) -> None:
        """Count one failed attempt; the circuit opens at ``threshold``."""
        with self._lock:
            self.failures += 1
            self.last_error = reason
            if self.failures >= self.threshold:
                self._open = True

    def record_success(self) -> None:
        """Reset the count after a useful answer (an open circuit stays open)."""
        with self._lock:
            self.failures = 0
