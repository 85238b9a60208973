"""The simulator's endpoint modules.

An endpoint module provides:

- ``register(router)``: add its routes (``router.add(method, template, handler,
  params=..., permission=...)``);
- optionally ``init_state(state)``: set up its own data in ``state.extensions`` (called
  for a new simulator and on every reset);
- optionally ``snapshot_state(state) -> dict``: a JSON-able view of that data, shown
  under the module's name in ``Simulator.state_snapshot()``.

Built-in modules are always loaded; optional modules (remotes and sync jobs) are
loaded when present.
"""

from __future__ import annotations

import importlib
from types import ModuleType

BUILTIN = ("access", "datastore", "prune", "config_datastore", "system")
OPTIONAL = ("sync",)


def load_modules() -> list[ModuleType]:
    modules = [importlib.import_module(f"{__name__}.{name}") for name in BUILTIN]
    for name in OPTIONAL:
        qualified = f"{__name__}.{name}"
        try:
            modules.append(importlib.import_module(qualified))
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise  # a broken optional module must not pass silently
    return modules
