"""A complete small operator: every `Parent` gets exactly one child ConfigMap.

Run it against any cluster (the local one included):

    python -m controller.examples.parents --kubeconfig PATH [--leader-election]

It installs its CRD (`parents.example.sympozium.dev`), then reconciles: create the
child (deterministic name, owner reference, so restarts and retries never duplicate it),
then record `status.childName` and a `Ready` condition. Deleting a child brings it back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from typing import Any

from controller import (
    GENERATION_CHANGED,
    AlreadyExists,
    CacheReader,
    Client,
    Conflict,
    Manager,
    Options,
    Request,
    Result,
    set_controller_reference,
    set_status_condition,
)

GROUP = "example.sympozium.dev"
PARENT = (f"{GROUP}/v1", "Parent")
CONFIGMAP = ("v1", "ConfigMap")

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"parents.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "parents", "singular": "parent", "kind": "Parent"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"message": {"type": "string", "default": "hello"}},
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


async def install_crd(client: Client) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(CRD)


class ParentReconciler:
    """Reads from the manager's caches, so a reconcile with nothing to do makes no request."""

    def __init__(self, client: Client, cache: CacheReader) -> None:
        self.client = client
        self.cache = cache

    async def reconcile(self, request: Request) -> Result | None:
        cached = self.cache.get(PARENT, request.name, request.namespace)
        if cached is None:
            return None  # deleted: its child goes with it (owner reference)
        parent = cached.copy()
        child_name = f"{request.name}-child"
        if self.cache.get(CONFIGMAP, child_name, request.namespace) is None:
            child: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": child_name, "namespace": request.namespace},
                "data": {"message": parent.get("spec", {}).get("message", "")},
            }
            set_controller_reference(parent, child)
            with contextlib.suppress(AlreadyExists):  # the cache had not seen it yet
                await self.client.create(child, field_manager="parents-operator")
        status = parent.get("status") or {}
        if status.get("childName") == child_name:
            return None
        parent["status"] = dict(status, childName=child_name)
        set_status_condition(parent, "Ready", "True", "ChildCreated", f"child {child_name} exists")
        try:
            await self.client.update_status(parent)
        except Conflict:
            # Our cached copy was older than the server's (often our own write not yet
            # seen): come back once the cache has caught up.
            return Result(requeue=True)
        return None


async def build(client: Client, options: Options) -> Manager:
    manager = Manager(client, options)
    await (
        manager.controller("parents")
        .for_(PARENT, GENERATION_CHANGED)  # our own status writes need no reconcile
        .owns(CONFIGMAP)
        .with_workers(4)
        .complete(ParentReconciler(client, manager.cache))
    )
    return manager


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--leader-election", action="store_true")
    parser.add_argument("--health-port", type=int, default=8081)
    parser.add_argument("--identity", default="")
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    client = await Client.connect(kubeconfig=args.kubeconfig)
    try:
        await install_crd(client)
        options = Options(
            leader_election=args.leader_election,
            leader_election_id="parents-operator",
            health_port=args.health_port,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        )
        if args.identity:
            options.identity = args.identity
        manager = await build(client, options)
        await manager.run_until_signal()
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
