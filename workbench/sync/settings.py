"""Tuning knobs of a sync run (timeouts, retries, batch caps, polling), with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.sync.retry import RetryPolicy

__all__ = ["SyncSettings"]


@dataclass(frozen=True)
class SyncSettings:
    """Operational settings of :func:`workbench.sync.run_sync`.

    Defaults suit production; tests shrink the delays so fault tests stay fast.

    Parameters
    ----------
    timeout : float
        Seconds per HTTP request (connect, read, write, pool).
    max_attempts, base_delay, max_delay, max_retry_after : see :class:`RetryPolicy`.
    breaker_threshold : int
        Consecutive failed attempts (timeouts, connection errors, 5xx) after which one
        destination is stopped for the rest of the sync.
    max_row_attempts : int
        Runs in which a rejected member is retried; after that it is reported as permanently
        failed until its data changes.
    max_batch : int, optional
        Cap on every batch size (never above the vendor limit); None = the vendor limits.
    concurrency : int
        Worker threads for per-member calls (Mailchimp PUT, Klaviyo profile-import); the
        vendor limits (Mailchimp 10 in flight, Klaviyo rates) still apply.
    klaviyo_bulk_min : int
        From this many profile upserts on, Klaviyo uses bulk import jobs instead of
        ``/api/profile-import`` per profile.
    job_poll_interval, job_timeout : float
        Polling of asynchronous jobs (Klaviyo bulk import, Google request status), seconds.
        Jobs still running at the timeout are reconciled at the start of the next sync.
    rate_limits : bool
        Apply the documented client-side rate limits (switch off only against local fakes).
    crash_after_batches : int, optional
        Test hook: the process kills itself (SIGKILL) right after this many acknowledged
        batches have been committed, to prove that a resumed sync loses and repeats nothing.
    """

    timeout: float = 30.0
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    breaker_threshold: int = 8
    max_row_attempts: int = 10
    max_batch: int | None = None
    concurrency: int = 8
    klaviyo_bulk_min: int = 500
    job_poll_interval: float = 2.0
    job_timeout: float = 300.0
    rate_limits: bool = True
    crash_after_batches: int | None = None

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy these settings describe."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            max_retry_after=self.max_retry_after,
        )

    def batch(self, vendor_limit: int) -> int:
        """Batch size for an operation whose documented maximum is ``vendor_limit``."""
        if self.max_batch is None:
            return vendor_limit
        return max(1, min(vendor_limit, self.max_batch))
