"""Built-in garbagecollector controller (being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext


async def setup(context: WorkloadContext) -> None:
    """Registers this controller with the context's manager."""
