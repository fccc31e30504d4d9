"""The local cluster's built-in controllers, each in its own module, all on `controller/`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localcluster.controllers import (
    deployment,
    garbagecollector,
    job,
    namespace,
    service,
    serviceaccount,
)

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

MODULES = (job, deployment, service, garbagecollector, namespace, serviceaccount)


async def setup(context: WorkloadContext) -> None:
    """Registers every built-in controller, then the node, with the context's manager."""
    from localcluster import node

    for module in MODULES:
        await module.setup(context)
    if context.settings.run_node:
        await node.setup(context)
