"""The pure quota state machine (alerts.quota) over a simulated month of daily samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alerts import quota
from alerts.quota import ENFORCED, OK, OVER, WARNING, PolicyLayer, QuotaPolicy, policy_merge, quota_evaluate

GIB = 2**30
START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
POLICY = QuotaPolicy(
    soft_limit_bytes=100 * GIB, hard_limit_bytes=150 * GIB, warning_percent=80, grace_days=7,
    action=quota.STOP_WRITES,
)


def run_days(usage_gib_by_day: list[float], policy: QuotaPolicy = POLICY, exempt: bool = False):
    """Feed one sample per day, carrying the stored grace dates like the service does."""
    over_since = grace_ends_at = None
    results = []
    for day, gib in enumerate(usage_gib_by_day):
        result = quota_evaluate(
            policy=policy, usage_bytes=int(gib * GIB), now=START + timedelta(days=day),
            over_since=over_since, grace_ends_at=grace_ends_at, exempt=exempt,
        )
        over_since, grace_ends_at = result.over_since, result.grace_ends_at
        results.append(result)
    return results


def test_a_month_goes_warning_grace_enforced_and_recovers():
    usage = [50, 55, 60, 70, 79, 80, 85, 95, 101, 105, 110, 112, 115, 118, 120,
             122, 125, 126, 127, 128, 95, 90, 88, 85, 70, 60, 60, 60, 60, 60]
    results = run_days(usage)
    states = [r.state for r in results]

    assert states[:5] == [OK] * 5
    assert states[5:8] == [WARNING] * 3, "80 GiB is exactly 80 % of the soft limit"
    assert states[8] == OVER
    grace_end = START + timedelta(days=8 + 7)
    assert results[8].over_since == START + timedelta(days=8)
    assert results[8].grace_ends_at == grace_end
    assert all(r.grace_ends_at == grace_end for r in results[8:15]), "the grace end does not move"
    assert states[8:15] == [OVER] * 7
    assert not any(r.block_writes for r in results[:15])

    assert states[15] == ENFORCED, "grace of 7 days started on day 8 ends on day 15"
    assert results[15].reason == "grace period ended"
    assert all(r.block_writes for r in results[15:20])

    assert states[20] == WARNING, "usage back under the soft limit lifts enforcement"
    assert not results[20].block_writes
    assert results[20].over_since is None
    assert results[20].grace_ends_at is None
    assert states[24:] == [OK] * 6


def test_reaching_the_hard_limit_enforces_at_once_without_grace():
    results = run_days([90, 150])
    assert results[1].state == ENFORCED
    assert results[1].reason == "hard limit reached"
    assert results[1].block_writes


def test_dropping_below_the_hard_limit_during_grace_lifts_enforcement():
    results = run_days([160, 120])
    assert results[0].state == ENFORCED
    assert results[1].state == OVER, "grace still running from day 0"
    assert not results[1].block_writes


def test_a_new_grace_starts_after_usage_went_back_under_the_limit():
    results = run_days([110, 90, 110])
    assert results[0].grace_ends_at == START + timedelta(days=7)
    assert results[1].state == WARNING
    assert results[2].grace_ends_at == START + timedelta(days=2 + 7)


def test_an_extended_grace_lifts_enforcement_until_the_new_end():
    first = run_days([110] * 8)
    assert first[-1].state == ENFORCED
    extended = quota_evaluate(
        policy=POLICY, usage_bytes=110 * GIB, now=START + timedelta(days=8),
        over_since=first[-1].over_since, grace_ends_at=START + timedelta(days=12),
    )
    assert extended.state == OVER
    assert not extended.block_writes
    later = quota_evaluate(
        policy=POLICY, usage_bytes=110 * GIB, now=START + timedelta(days=12),
        over_since=extended.over_since, grace_ends_at=extended.grace_ends_at,
    )
    assert later.state == ENFORCED


def test_raising_the_limit_returns_to_ok():
    enforced = run_days([110] * 8)[-1]
    raised = QuotaPolicy(soft_limit_bytes=200 * GIB, hard_limit_bytes=300 * GIB, action=quota.STOP_WRITES)
    result = quota_evaluate(
        policy=raised, usage_bytes=110 * GIB, now=START + timedelta(days=9),
        over_since=enforced.over_since, grace_ends_at=enforced.grace_ends_at,
    )
    assert result.state == OK
    assert result.over_since is None


def test_an_exempt_tenant_is_never_enforced():
    results = run_days([110] * 10 + [500], exempt=True)
    assert {r.state for r in results} == {OVER}
    assert not any(r.block_writes for r in results)


def test_bill_overage_enforces_without_blocking_writes():
    policy = QuotaPolicy(soft_limit_bytes=100 * GIB, hard_limit_bytes=None, grace_days=3, action=quota.BILL_OVERAGE)
    results = run_days([120] * 5, policy=policy)
    assert results[3].state == ENFORCED
    assert not any(r.block_writes for r in results)


def test_no_limit_and_no_usage_are_ok():
    assert quota_evaluate(policy=QuotaPolicy(None, None), usage_bytes=10**15, now=START).state == OK
    assert quota_evaluate(policy=POLICY, usage_bytes=None, now=START).state == OK


def test_only_a_hard_limit_starts_grace_at_the_hard_limit_but_enforces_there_at_once():
    policy = QuotaPolicy(soft_limit_bytes=None, hard_limit_bytes=100 * GIB, warning_percent=90)
    assert quota_evaluate(policy=policy, usage_bytes=90 * GIB, now=START).state == WARNING
    assert quota_evaluate(policy=policy, usage_bytes=100 * GIB, now=START).state == ENFORCED


def test_zero_grace_days_enforce_on_the_first_sample_over():
    policy = QuotaPolicy(soft_limit_bytes=100 * GIB, hard_limit_bytes=None, grace_days=0, action=quota.STOP_WRITES)
    assert run_days([101], policy=policy)[0].state == ENFORCED


def test_tenant_override_wins_field_by_field_over_the_plan():
    plan = PolicyLayer(soft_limit_gib=Decimal("100"), hard_limit_gib=Decimal("150"), warning_percent=80,
                       grace_days=7, action=quota.STOP_WRITES)
    override = PolicyLayer(soft_limit_gib=Decimal("500.5"), action="")
    merged = policy_merge(plan, override)
    assert merged.soft_limit_bytes == int(Decimal("500.5") * GIB)
    assert merged.hard_limit_bytes == 150 * GIB
    assert merged.grace_days == 7
    assert merged.action == quota.STOP_WRITES, "an empty action inherits the plan's"
    assert policy_merge(None, None) == QuotaPolicy(None, None)
