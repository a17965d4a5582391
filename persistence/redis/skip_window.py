"""After a Redis failure, stop asking Redis for a while.

A hung Redis costs each call one `REDIS_TIMEOUT_SECONDS`; callers with a safe fallback
(the record cache, the rate limiter, persisted queries, the search cache) would pay it on
every request. With a window, an outage costs one timeout per `REDIS_RETRY_AFTER_SECONDS`
and one log line, and the counters say how much was skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class SkipWindow:
    def __init__(self, seconds: float, log: logging.Logger, message: str) -> None:
        self._seconds = seconds
        self._log = log
        self._message = message  # what the fallback is, for the one warning per window
        self._until = 0.0
        self.failures = 0  # Redis calls that failed (each opened a window)
        self.skipped = 0  # calls not made because a window was open
        # Told of each failure (the metrics' Redis error counter, when metrics are on).
        self.on_failure: Callable[[], None] | None = None

    def skipping(self) -> bool:
        """True while a window is open (the call is counted as skipped)."""
        if time.monotonic() < self._until:
            self.skipped += 1
            return True
        return False

    def failed(self, error: Exception) -> None:
        self.failures += 1
        if self.on_failure is not None:
            self.on_failure()
        self._until = time.monotonic() + self._seconds
        self._log.warning(
            "%s; not asking Redis for %g s: %s: %s",
            self._message,
            self._seconds,
            type(error).__name__,
            error,
        )
