"""The quota state machine as pure functions: no database, no PBS, no clock.

States: ok -> warning (usage >= warning % of the soft limit) -> over (above the soft limit,
grace running until ``grace_ends_at``) -> enforced (grace ran out, or usage reached the hard
limit) -> back to warning/ok as soon as usage drops below the soft limit or the limits are
raised. The state is derived from usage, limits and the grace dates each time, so raising a
limit or extending a grace takes effect at the next evaluation without special cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

GIB = 2**30

OK = "ok"
WARNING = "warning"
OVER = "over"
ENFORCED = "enforced"
STATE_ORDER = {OK: 0, WARNING: 1, OVER: 2, ENFORCED: 3}

BILL_OVERAGE = "bill-overage"
STOP_WRITES = "stop-writes"

DEFAULT_WARNING_PERCENT = 80
DEFAULT_GRACE_DAYS = 7
DEFAULT_ACTION = BILL_OVERAGE


def gib_to_bytes(gib: Decimal | int | None) -> int | None:
    if gib is None:
        return None
    return int(Decimal(gib) * GIB)


@dataclass(frozen=True)
class PolicyLayer:
    """One source of quota settings (a plan's or a tenant's override); None = not set here."""

    soft_limit_gib: Decimal | None = None
    hard_limit_gib: Decimal | None = None
    warning_percent: int | None = None
    grace_days: int | None = None
    action: str | None = None


@dataclass(frozen=True)
class QuotaPolicy:
    """The effective quota of a tenant, in bytes."""

    soft_limit_bytes: int | None
    hard_limit_bytes: int | None
    warning_percent: int = DEFAULT_WARNING_PERCENT
    grace_days: int = DEFAULT_GRACE_DAYS
    action: str = DEFAULT_ACTION

    @property
    def has_limit(self) -> bool:
        return self.soft_limit_bytes is not None or self.hard_limit_bytes is not None

    @property
    def effective_soft_bytes(self) -> int | None:
        """The limit the grace period starts at: the soft limit, or the hard one if only that is set."""
        return self.soft_limit_bytes if self.soft_limit_bytes is not None else self.hard_limit_bytes

    @property
    def warning_bytes(self) -> int | None:
        soft = self.effective_soft_bytes
        return None if soft is None else soft * self.warning_percent // 100


def _pick(layers: tuple[PolicyLayer | None, ...], field: str) -> object | None:
    value = None
    for layer in layers:
        if layer is None:
            continue
        candidate = getattr(layer, field)
        if candidate is not None and candidate != "":
            value = candidate
    return value


def policy_merge(*layers: PolicyLayer | None) -> QuotaPolicy:
    """Merge policy layers, later layers winning field by field (plan, then tenant override)."""
    soft = _pick(layers, "soft_limit_gib")
    hard = _pick(layers, "hard_limit_gib")
    percent = _pick(layers, "warning_percent")
    grace = _pick(layers, "grace_days")
    action = _pick(layers, "action")
    return QuotaPolicy(
        soft_limit_bytes=gib_to_bytes(Decimal(str(soft))) if soft is not None else None,
        hard_limit_bytes=gib_to_bytes(Decimal(str(hard))) if hard is not None else None,
        warning_percent=int(str(percent)) if percent is not None else DEFAULT_WARNING_PERCENT,
        grace_days=int(str(grace)) if grace is not None else DEFAULT_GRACE_DAYS,
        action=str(action) if action is not None else DEFAULT_ACTION,
    )


@dataclass(frozen=True)
class QuotaEvaluation:
    """The outcome of one evaluation: the state, the grace dates to store, and whether write
    rights must be removed on PBS."""

    state: str
    over_since: datetime | None
    grace_ends_at: datetime | None
    block_writes: bool
    reason: str


def quota_evaluate(
    *,
    policy: QuotaPolicy,
    usage_bytes: int | None,
    now: datetime,
    over_since: datetime | None = None,
    grace_ends_at: datetime | None = None,
    exempt: bool = False,
) -> QuotaEvaluation:
    """Evaluate one usage figure against the policy.

    ``over_since``/``grace_ends_at`` are what was stored after the previous evaluation: a
    grace period starts the first time usage is over the soft limit and keeps its end date
    (possibly extended by staff) while usage stays over. Exempt tenants go through the same
    states but are never enforced.
    """
    if usage_bytes is None:
        return QuotaEvaluation(OK, None, None, False, "no usage figure yet")
    soft = policy.effective_soft_bytes
    if soft is None:
        return QuotaEvaluation(OK, None, None, False, "no limit set")

    hard = policy.hard_limit_bytes
    hard_passed = hard is not None and usage_bytes >= hard
    if usage_bytes > soft or hard_passed:
        if over_since is None:
            over_since = now
            grace_ends_at = None
        if grace_ends_at is None:
            grace_ends_at = over_since + timedelta(days=policy.grace_days)
        if exempt:
            reason = "over the limit; tenant is exempt"
            return QuotaEvaluation(OVER, over_since, grace_ends_at, False, reason)
        if hard_passed:
            return QuotaEvaluation(
                ENFORCED, over_since, grace_ends_at, policy.action == STOP_WRITES, "hard limit reached"
            )
        if now >= grace_ends_at:
            return QuotaEvaluation(
                ENFORCED, over_since, grace_ends_at, policy.action == STOP_WRITES, "grace period ended"
            )
        reason = "over the soft limit; grace running"
        return QuotaEvaluation(OVER, over_since, grace_ends_at, False, reason)

    warning = policy.warning_bytes
    if warning is not None and usage_bytes >= warning:
        reason = f"at or above {policy.warning_percent}% of the soft limit"
        return QuotaEvaluation(WARNING, None, None, False, reason)
    return QuotaEvaluation(OK, None, None, False, "below the warning threshold")
