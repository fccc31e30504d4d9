"""The local node `localcluster`: runs pods as local processes, like a kubelet.

Modules: `kubelet` (binding, pod workers, deletion, node restarts), `runtime` (images
and processes), `mounts` (how a process sees its volumes), `volumes`, `env`, `probes`,
`status` and `logs` (files on disk and the `pods/log` endpoint).

Settings beyond `WorkloadSettings` come from the environment of the cluster process:
`LOCALCLUSTER_NODE_MOUNTS` = `auto` (default), `bind` or `env` chooses how containers
see their volumes (see `mounts.py`; `env` forces the fallback).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from localcluster.node import mounts, runtime
from localcluster.node.kubelet import POD, Node, NodeOptions
from localcluster.node.volumes import NodePaths

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

log = logging.getLogger("localcluster.node")

MOUNT_MODE_ENV = "LOCALCLUSTER_NODE_MOUNTS"


async def setup(context: WorkloadContext) -> None:
    """Starts the node with the context's manager and serves pod logs."""
    settings = context.settings
    mode = await mounts.detect(os.environ.get(MOUNT_MODE_ENV, "auto"))
    options = NodeOptions(
        data_dir=settings.data_dir,
        allowed_images=tuple(settings.allowed_images),
        mount_mode=mode,
        api_port=context.server.port,
    )
    killed = runtime.kill_leftovers(NodePaths(settings.data_dir / "node").processes)
    if killed:
        log.warning("killed %d processes left behind by an earlier run of the node", killed)
    node = Node(context.client, context.manager.informer(POD), options, mode)
    node.token_source = context.server.tokens.pod_token
    await context.manager.controller("localcluster-node").for_(POD).with_workers(8).complete(node)
    context.manager.add(node.run, needs_leader=False)
    context.server.log_provider = node.logs.serve
    log.info(
        "node %s ready mounts=%s allowed_images=%s", "localcluster", mode, options.allowed_images
    )
