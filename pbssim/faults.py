"""Latency and fault injection settings, shared by the in-process transport and the server."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class FaultConfig:
    """What goes wrong, and how often. Rates are probabilities per request (0..1).

    - latency_ms: added to every /api2 request (the floor benchmarks compare against)
    - error_rate: answer 500/503 with a plain-text body instead of handling
    - timeout_rate: hold the request for ``timeout_hold_s`` and then drop it
    - drop_rate: close the connection without any answer
    Faults never apply to the /_sim control interface.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    timeout_hold_s: float = 30.0
    seed: int | None = None
    # Only requests whose method is in this set are faulted (default: all).
    methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "DELETE"})
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def draw(self, method: str) -> str | None:
        """Pick the fault for one request: "error", "timeout", "drop" or None."""
        if method.upper() not in self.methods:
            return None
        roll = self._rng.random()
        for kind, rate in (("error", self.error_rate), ("timeout", self.timeout_rate), ("drop", self.drop_rate)):
            if roll < rate:
                return kind
            roll -= rate
        return None
