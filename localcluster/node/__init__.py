"""The local node: runs pods as local processes, like a kubelet (being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext


async def setup(context: WorkloadContext) -> None:
    """Starts the node with the context's manager and serves pod logs."""
