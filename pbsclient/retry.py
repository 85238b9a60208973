"""The one retry policy: bounded attempts, exponential backoff with full jitter.

What is retried is decided by ``errors.is_retryable`` (connection errors and
5xx, only for requests that are safe to repeat); this module only says how
often and how long to wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try (1 = never retry).

    The wait before retry n (n = 1, 2, ...) is drawn uniformly from
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` ("full jitter"), so
    many clients that failed together do not come back together.
    """

    max_attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 4.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays cannot be negative")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def ceiling(self, retry_number: int) -> float:
        """Upper bound of the wait before retry ``retry_number`` (1-based)."""
        exponent = min(max(retry_number - 1, 0), 62)  # keeps 2**n finite
        return float(min(self.max_delay, self.base_delay * (2**exponent)))

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based), with full jitter."""
        draw = (rng or _RNG).random()
        return draw * self.ceiling(retry_number)


# Jitter needs no cryptographic randomness.
_RNG = random.Random()  # noqa: S311
