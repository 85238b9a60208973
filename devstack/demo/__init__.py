"""Demo data for `make run`, labelled as demo data wherever it shows.

``base``: the simulated hosts registered, plans, logins, a tenant per simulated customer.
``history``: 90 days of usage behind them, the last two months closed, one correction.
``scenarios``: a tenant near its quota, one in grace, a stale offsite copy, a failed run.
"""

from devstack.demo.base import (
    DemoHostInfo,
    NewLogin,
    Tenant,
    demo_client_login_ensure,
    demo_host_register,
    demo_logins_ensure,
    demo_plans_ensure,
    demo_tenants_adopt,
)
from devstack.demo.history import HistoryResult, demo_months_close, demo_usage_history_ensure
from devstack.demo.scenarios import (
    demo_failed_run_ensure,
    demo_offsite_ensure,
    demo_quotas_ensure,
)

__all__ = [
    "DemoHostInfo",
    "HistoryResult",
    "NewLogin",
    "Tenant",
    "demo_client_login_ensure",
    "demo_failed_run_ensure",
    "demo_host_register",
    "demo_logins_ensure",
    "demo_months_close",
    "demo_offsite_ensure",
    "demo_plans_ensure",
    "demo_quotas_ensure",
    "demo_tenants_adopt",
    "demo_usage_history_ensure",
]
