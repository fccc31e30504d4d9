"""Built-in serviceaccount controller: every active namespace has a `default` ServiceAccount.

Pods name `default` when they name no account, so it must exist as soon as the
namespace does and come back if deleted. Terminating namespaces are left alone: the
API server refuses new content there, and the namespace controller is emptying them.
(Tokens for pods are the node's business.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from controller import AlreadyExists, Client, Forbidden, NotFound, Request, Result, SharedInformer

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

NAMESPACE = ("v1", "Namespace")
SERVICE_ACCOUNT = ("v1", "ServiceAccount")
DEFAULT = "default"


def namespace_of_default(obj: dict[str, Any]) -> Iterable[Request]:
    """Maps a `default` ServiceAccount to its namespace's key; other accounts to nothing."""
    meta = obj.get("metadata") or {}
    if meta.get("name") == DEFAULT and meta.get("namespace"):
        return (Request("", str(meta["namespace"])),)
    return ()


class ServiceAccountReconciler:
    def __init__(
        self, client: Client, namespaces: SharedInformer, accounts: SharedInformer
    ) -> None:
        self.client = client
        self.namespaces = namespaces
        self.accounts = accounts

    async def reconcile(self, request: Request) -> Result | None:
        namespace = self.namespaces.store.get_readonly(request.name)
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return None
        if self.accounts.store.get_readonly(f"{request.name}/{DEFAULT}") is not None:
            return None  # a stale "exists" is corrected by the DELETED event that follows
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT, "namespace": request.name},
        }
        # Forbidden/NotFound: the namespace started terminating or went meanwhile.
        with contextlib.suppress(AlreadyExists, Forbidden, NotFound):
            await self.client.create(account, field_manager="serviceaccount-controller")
        return None


async def setup(context: WorkloadContext) -> None:
    """Reconciles namespaces, and hears when a `default` account goes."""
    manager = context.manager
    reconciler = ServiceAccountReconciler(
        context.client, manager.informer(NAMESPACE), manager.informer(SERVICE_ACCOUNT)
    )
    await (
        manager.controller("serviceaccount")
        .for_(NAMESPACE)
        .watches(SERVICE_ACCOUNT, namespace_of_default)
        .with_workers(2)
        .complete(reconciler)
    )
