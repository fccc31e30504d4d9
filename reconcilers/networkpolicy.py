"""The per-run NetworkPolicy: an agent pod reaches only what its run needs.

The original promised this and shipped only static policies that selected nothing
(gaps.md A5). Each run gets a policy selecting exactly its pod by the
`sympozium.ai/agent-run` label: no ingress at all, and egress only to DNS, the model
endpoint, the event bus (for the IPC bridge), the instance's memory server, the API
server when a skill sidecar holds RBAC, and the hosts the SympoziumPolicy allows.
NetworkPolicy cannot name DNS hosts, so a hostname becomes "this port, anywhere"
while an IP literal becomes a /32 (or /128) block.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.config import default_base_url
from reconcilers import labels

DEFAULT_PORTS = {"http": 80, "https": 443, "nats": 4222}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class EgressNeeds:
    """What one run's pod must reach; everything else is denied."""

    model: Endpoint | None = None
    event_bus: Endpoint | None = None
    memory_server: bool = False
    api_server: bool = False
    extra: tuple[Endpoint, ...] = ()
    allow_dns: bool = True
    deny_all: bool = True


def endpoint_of(url: str) -> Endpoint | None:
    """Host and port of a URL; None when it has no host."""
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return Endpoint(parts.hostname, port or DEFAULT_PORTS.get(parts.scheme, 80))


def model_endpoint(provider: str, base_url: str | None) -> Endpoint | None:
    """The endpoint the runner will call: the same defaults, from the runner's own table."""
    return endpoint_of(base_url or default_base_url(provider) or "")


def _peer(endpoint: Endpoint) -> list[dict[str, Any]] | None:
    """The `to` peers for an endpoint, or None for "any destination on this port"."""
    try:
        address = ipaddress.ip_address(endpoint.host)
    except ValueError:
        address = None
    if address is not None:
        return [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}]
    parts = endpoint.host.split(".")
    # name.namespace.svc[.cluster.local]: an in-cluster Service, so its namespace suffices.
    if len(parts) >= 3 and parts[2] == "svc":
        return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": parts[1]}}}]
    return None


def _rule(endpoint: Endpoint) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": endpoint.port}]}
    peers = _peer(endpoint)
    if peers is not None:
        rule["to"] = peers
    return rule


def egress_rules(needs: EgressNeeds, instance: str) -> list[dict[str, Any]]:
    if not needs.deny_all:
        return [{}]
    rules: list[dict[str, Any]] = []
    if needs.allow_dns:
        rules.append({"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]})
    for endpoint in (needs.model, needs.event_bus, *needs.extra):
        if endpoint is not None:
            rules.append(_rule(endpoint))
    if needs.memory_server:
        rules.append(
            {
                "to": [
                    {
                        "podSelector": {
                            "matchLabels": {labels.COMPONENT: "memory", labels.INSTANCE: instance}
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        )
    if needs.api_server:
        # Skill sidecars with RBAC talk to the API server, whose address varies by cluster.
        rules.append(
            {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}
        )
    unique: list[dict[str, Any]] = []
    for rule in rules:
        if rule not in unique:
            unique.append(rule)
    return unique


def build_network_policy(
    run_name: str, namespace: str, instance: str, needs: EgressNeeds
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{run_name}-egress" if len(run_name) <= 246 else run_name[:246] + "-egress",
            "namespace": namespace,
            "labels": labels.run_labels(run_name, instance),
        },
        "spec": {
            "podSelector": {"matchLabels": {labels.AGENT_RUN: run_name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": egress_rules(needs, instance),
        },
    }
