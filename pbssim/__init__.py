"""A PBS 4.2 simulator, faithful to PBS's documented API behaviour.

It stands in for a real Proxmox Backup Server in tests, demos and benchmarks:
in-process as an httpx transport, or as a standalone HTTPS server.
"""

from __future__ import annotations

from typing import Any

from pbssim.faults import FaultConfig

__all__ = ["FaultConfig", "SimServer", "Simulator"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import pbssim` stays cheap and the server's TLS
    # dependencies load only when a server is started.
    if name == "Simulator":
        from pbssim.simulator import Simulator

        return Simulator
    if name == "SimServer":
        from pbssim.server import SimServer

        return SimServer
    raise AttributeError(name)
