"""The Service controller: Endpoints for selectors, and a local address per service port.

On one machine there is no service network: pods are host processes that listen on
host ports themselves. So what kube-proxy does becomes a small TCP proxy per service
port, listening on 127.0.0.1 and forwarding each connection to a ready backend, round
robin (trying the next one when a connect fails). Where to connect is recorded on the
Service as the annotation `localcluster.sympozium.ai/address-<port name, else number>:
127.0.0.1:<port>`; `status.loadBalancer.ingress[0].ip` says 127.0.0.1 too. A proxy keeps
its port across reconciles and, when it is free, across restarts (read back from the
annotation).

For a Service with a selector, the `Endpoints` object of the same name lists the matching
pods, as upstream's endpoints controller does: ready pods under `addresses`, running but
unready ones under `notReadyAddresses` (all under `addresses` with
`publishNotReadyAddresses`), a named `targetPort` resolved per pod from its container
ports. A Service without a selector is proxied to the Endpoints someone else wrote.
A running pod with no `podIP` is taken to be at 127.0.0.1, where the node runs it.
Only TCP ports are proxied; ExternalName Services get nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller import AlreadyExists, Client, Conflict, NotFound, Request, Result
from controller.cache import NAMESPACE_INDEX, Indexer, thaw
from localcluster.controllers.pods import is_ready, phase

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

log = logging.getLogger("localcluster.controllers.service")

Obj = dict[str, Any]
SERVICE = ("v1", "Service")
ENDPOINTS = ("v1", "Endpoints")
POD = ("v1", "Pod")
FIELD_MANAGER = "service-controller"
ADDRESS_ANNOTATION = "localcluster.sympozium.ai/address-"
LOCAL_HOST = "127.0.0.1"
CONNECT_TIMEOUT = 5.0
BUFFER = 64 * 1024

Backend = tuple[str, int]


async def setup(context: WorkloadContext) -> None:
    """Registers this controller with the context's manager; proxies stop with it."""
    manager = context.manager
    proxies = Proxies()
    reconciler = ServiceReconciler(
        context.client,
        services=manager.informer(SERVICE).store,
        pods=manager.informer(POD).store,
        endpoints=manager.informer(ENDPOINTS).store,
        proxies=proxies,
    )
    await (
        manager.controller("service")
        .for_(SERVICE)
        .watches(ENDPOINTS, lambda obj: (_request(obj),))
        .watches(POD, reconciler.services_selecting)
        .with_workers(2)
        .complete(reconciler)
    )
    manager.add(proxies.run)


def _request(obj: Mapping[str, Any]) -> Request:
    meta = obj.get("metadata") or {}
    return Request(str(meta.get("namespace") or ""), str(meta.get("name") or ""))


# ---- the proxy


class PortProxy:
    """One listening socket on 127.0.0.1 that forwards TCP to the current backends."""

    def __init__(self) -> None:
        self.backends: list[Backend] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._next = 0
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self, preferred: int | None) -> None:
        """Listens on `preferred` if it is free, else on any free port."""
        for port in (preferred, 0) if preferred else (0,):
            try:
                self._server = await asyncio.start_server(
                    self._serve, LOCAL_HOST, port, reuse_address=True
                )
            except OSError:
                continue
            self.port = int(self._server.sockets[0].getsockname()[1])
            return
        raise OSError(f"cannot listen on {LOCAL_HOST}")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            upstream = await self._connect()
            if upstream is None:
                return  # nothing ready: the client sees the connection closed
            upstream_reader, upstream_writer = upstream
            try:
                await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
            finally:
                upstream_writer.close()
        finally:
            writer.close()
            if task is not None:
                self._connections.discard(task)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        backends = list(self.backends)
        start = self._next
        self._next += 1
        for i in range(len(backends)):
            host, port = backends[(start + i) % len(backends)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                log.debug("backend %s:%s refused: %r", host, port, exc)
        return None


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies one direction until EOF, then half-closes, so either side may finish first."""
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


@dataclass
class Proxies:
    """The proxies of every Service, by service key, then by port name or number."""

    services: dict[str, dict[str, PortProxy]] = field(default_factory=dict)

    async def ensure(
        self, key: str, wanted: Mapping[str, tuple[int | None, list[Backend]]]
    ) -> dict[str, int]:
        """Makes `key`'s proxies exactly `wanted` (preferred port, backends); their ports."""
        current = self.services.setdefault(key, {})
        for name in set(current) - set(wanted):
            await current.pop(name).close()
        for name, (preferred, backends) in wanted.items():
            proxy = current.get(name)
            if proxy is None:
                proxy = PortProxy()
                await proxy.start(preferred)
                current[name] = proxy
                log.info(
                    "proxying service=%s port=%s address=%s:%s", key, name, LOCAL_HOST, proxy.port
                )
            proxy.backends = backends
        if not current:
            del self.services[key]
        return {name: proxy.port for name, proxy in current.items()}

    async def stop(self, key: str) -> None:
        for proxy in self.services.pop(key, {}).values():
            await proxy.close()

    async def run(self) -> None:
        """A manager runnable: the proxies live as long as the controllers do."""
        try:
            await asyncio.Event().wait()
        finally:
            for key in list(self.services):
                await self.stop(key)


# ---- endpoints


def port_key(service_port: Mapping[str, Any]) -> str:
    """How a service port is named in annotations: its name, else its number."""
    return str(service_port.get("name") or service_port.get("port"))


def selects(selector: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def target_port(service_port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    """The pod's port for a service port: a number, or a named container port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == target and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return None


def pod_ip(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    if status.get("podIP"):
        return str(status["podIP"])
    if phase(pod) == "Running":
        return LOCAL_HOST  # the node's pods are host processes
    return None


def endpoint_subsets(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """Upstream's Endpoints subsets: pods grouped by the ports they serve, sorted."""
    spec = service.get("spec") or {}
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        ip = pod_ip(pod)
        if meta.get("deletionTimestamp") or ip is None:
            continue
        if phase(pod) in ("Succeeded", "Failed"):
            continue
        ports = []
        for service_port in spec.get("ports") or ():
            number = target_port(service_port, pod)
            if number is not None:
                ports.append(
                    (
                        str(service_port.get("name") or ""),
                        number,
                        str(service_port.get("protocol") or "TCP"),
                    )
                )
        if not ports:
            continue
        address: Obj = {
            "ip": ip,
            "targetRef": {
                "kind": "Pod",
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "uid": meta.get("uid", ""),
            },
        }
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            address["nodeName"] = node
        ready, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready if publish_all or is_ready(pod) else not_ready).append(address)
    subsets = []
    for ports_key, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        order = lambda a: (a["ip"], a["targetRef"]["name"])  # noqa: E731
        if ready:
            subset["addresses"] = sorted(ready, key=order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=order)
        subset["ports"] = [
            {**({"name": name} if name else {}), "port": number, "protocol": protocol}
            for name, number, protocol in ports_key
        ]
        subsets.append(subset)
    return subsets


def backends(
    subsets: Iterable[Mapping[str, Any]], service_port: Mapping[str, Any]
) -> list[Backend]:
    """The ready (ip, port) pairs serving one service port, in order, without repeats."""
    name = str(service_port.get("name") or "")
    found: list[Backend] = []
    for subset in subsets:
        for port in subset.get("ports") or ():
            if str(port.get("name") or "") != name or port.get("protocol", "TCP") != "TCP":
                continue
            for address in subset.get("addresses") or ():
                backend = (str(address.get("ip")), int(port.get("port", 0)))
                if backend not in found:
                    found.append(backend)
    return found


def _preferred_port(service: Mapping[str, Any], key: str) -> int | None:
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    _, _, port = str(annotations.get(ADDRESS_ANNOTATION + key, "")).rpartition(":")
    return int(port) if port.isdigit() else None


# ---- the reconciler


class ServiceReconciler:
    def __init__(
        self,
        client: Client,
        *,
        services: Indexer,
        pods: Indexer,
        endpoints: Indexer,
        proxies: Proxies,
    ) -> None:
        self.client = client
        self.services = services
        self.pods = pods
        self.endpoints = endpoints
        self.proxies = proxies

    def services_selecting(self, pod: Obj) -> list[Request]:
        """A pod event concerns the Services whose selector matches it."""
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        found = []
        for service in self.services.by_index_readonly(NAMESPACE_INDEX, namespace):
            selector = (service.get("spec") or {}).get("selector")
            if selector and selects(selector, pod):
                found.append(Request(namespace, service["metadata"]["name"]))
        return found

    async def reconcile(self, request: Request) -> Result | None:
        key = str(request)
        service = self.services.get_readonly(key)
        if service is None or service["metadata"].get("deletionTimestamp"):
            await self.proxies.stop(key)
            if service is None and self.endpoints.get_readonly(key) is not None:
                with contextlib.suppress(NotFound):
                    await self.client.delete(ENDPOINTS, request.name, request.namespace)
            return None
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            await self.proxies.stop(key)
            return None

        selector = spec.get("selector")
        if selector:
            pods = [
                pod
                for pod in self.pods.by_index_readonly(NAMESPACE_INDEX, request.namespace)
                if selects(selector, pod)
            ]
            subsets = endpoint_subsets(service, pods)
            if not await self._write_endpoints(service, subsets):
                return Result(requeue=True)  # the cached Endpoints were stale: decide again
        else:
            written: Mapping[str, Any] = self.endpoints.get_readonly(key) or {}
            subsets = list(written.get("subsets") or ())

        wanted = {
            port_key(port): (_preferred_port(service, port_key(port)), backends(subsets, port))
            for port in spec.get("ports") or ()
            if port.get("protocol", "TCP") == "TCP"
        }
        ports = await self.proxies.ensure(key, wanted)
        await self._record(service, ports)
        return None

    async def _write_endpoints(self, service: Obj, subsets: list[Obj]) -> bool:
        """Creates or updates the Service's Endpoints; False if the cache was stale."""
        meta = service["metadata"]
        labels = dict(meta.get("labels") or {})
        cached = self.endpoints.get_readonly(f"{meta['namespace']}/{meta['name']}")
        if cached is not None:
            same_labels = dict(cached["metadata"].get("labels") or {}) == labels
            if same_labels and thaw(cached.get("subsets") or []) == subsets:
                return True
            endpoints = thaw(cached)
        else:
            endpoints = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            }
        # Empty fields are left out, as upstream's omitempty does.
        for path, field_name, value in (
            (endpoints["metadata"], "labels", labels),
            (endpoints, "subsets", subsets),
        ):
            if value:
                path[field_name] = value
            else:
                path.pop(field_name, None)
        try:
            if cached is not None:
                await self.client.update(endpoints, field_manager=FIELD_MANAGER)
            else:
                await self.client.create(endpoints, field_manager=FIELD_MANAGER)
        except (Conflict, AlreadyExists):
            return False
        return True

    async def _record(self, service: Obj, ports: Mapping[str, int]) -> None:
        """Writes the proxies' addresses where clients look: annotations, load balancer."""
        meta = service["metadata"]
        annotations = meta.get("annotations") or {}
        wanted = {ADDRESS_ANNOTATION + name: f"{LOCAL_HOST}:{port}" for name, port in ports.items()}
        patch: dict[str, str | None] = {
            k: None for k in annotations if k.startswith(ADDRESS_ANNOTATION) and k not in wanted
        }
        patch.update({k: v for k, v in wanted.items() if annotations.get(k) != v})
        if patch:
            await self.client.patch(
                SERVICE,
                meta["name"],
                {"metadata": {"annotations": patch}},
                namespace=meta["namespace"],
                field_manager=FIELD_MANAGER,
            )
        ingress = [{"ip": LOCAL_HOST}] if ports else None
        if ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") != ingress:
            await self.client.patch(
                SERVICE,
                meta["name"],
                {"status": {"loadBalancer": {"ingress": ingress}}},
                namespace=meta["namespace"],
                subresource="status",
                field_manager=FIELD_MANAGER,
            )
