"""Environment building: sources, precedence, `$(VAR)` expansion, the downward API."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest

from localcluster.node.env import (
    ConfigError,
    build_env,
    expand,
    field_value,
    format_map,
    parse_quantity,
    resource_value,
)

Obj = dict[str, Any]

POD: Obj = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"'},
    },
    "spec": {"nodeName": "localcluster", "serviceAccountName": "sa"},
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


OBJECTS: dict[tuple[str, str], Obj] = {
    ("ConfigMap", "cm"): {"data": {"A": "from-cm", "B": "b"}},
    ("Secret", "sec"): {"data": {"A": b64("from-secret"), "PASS": b64("s3cret")}},
}


async def fetch(kind: str, namespace: str, name: str) -> Obj | None:
    assert namespace == "ns"
    return OBJECTS.get((kind, name))


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env.get) == "1-two"
    assert expand("$(MISSING)", env.get) == "$(MISSING)"
    assert expand("$$(A)", env.get) == "$(A)"
    assert expand("$$", env.get) == "$"
    assert expand("a$b", env.get) == "a$b"
    assert expand("$(A", env.get) == "$(A"
    assert expand("end$", env.get) == "end$"
    assert expand("$(A)$(A)", env.get) == "11"


async def test_env_from_then_env_in_order_with_expansion() -> None:
    container = {
        "envFrom": [
            {"configMapRef": {"name": "cm"}},
            {"secretRef": {"name": "sec"}, "prefix": "S_"},
        ],
        "env": [
            {"name": "A", "value": "literal-$(B)"},
            {"name": "C", "value": "$(A)+$(S_PASS)+$(LATER)"},
            {"name": "LATER", "value": "x"},
        ],
    }
    env = await build_env(POD, container, fetch, {"BASE": "base", "B": "overridden"})
    assert env["BASE"] == "base"
    assert env["B"] == "b"  # envFrom wins over the base
    assert env["S_A"] == "from-secret"
    assert env["A"] == "literal-b"
    assert env["C"] == "literal-b+s3cret+$(LATER)"  # only what was defined before


async def test_value_from_sources() -> None:
    container = {
        "name": "main",
        "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}},
        "env": [
            {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "A"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASS"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "OPT",
                "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": True}},
            },
            {
                "name": "OPTKEY",
                "valueFrom": {"secretKeyRef": {"name": "sec", "key": "x", "optional": True}},
            },
        ],
    }
    env = await build_env(POD, container, fetch)
    assert env == {
        "CM": "from-cm",
        "PW": "s3cret",
        "NAME": "p",
        "UID": "u-1",
        "APP": "web",
        "NODE": "localcluster",
        "SA": "sa",
        "IP": "127.0.0.1",
        "CPU": "2",
        "MEM": "1024",
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"configMapKeyRef": {"name": "nope", "key": "A"}}, 'configmap "nope" not found'),
        ({"configMapKeyRef": {"name": "cm", "key": "Z"}}, "couldn't find key Z in ConfigMap ns/cm"),
        ({"secretKeyRef": {"name": "nope", "key": "A"}}, 'secret "nope" not found'),
        ({"secretKeyRef": {"name": "sec", "key": "Z"}}, "couldn't find key Z in Secret ns/sec"),
    ],
)
async def test_missing_required_sources_fail_to_configure(source: Obj, message: str) -> None:
    container = {"env": [{"name": "X", "valueFrom": source}]}
    with pytest.raises(ConfigError, match=message):
        await build_env(POD, container, fetch)


async def test_missing_env_from_source() -> None:
    with pytest.raises(ConfigError, match='configmap "gone" not found'):
        await build_env(POD, {"envFrom": [{"configMapRef": {"name": "gone"}}]}, fetch)
    optional = {"envFrom": [{"configMapRef": {"name": "gone", "optional": True}}]}
    assert await build_env(POD, optional, fetch) == {}


def test_quantities() -> None:
    assert parse_quantity("500m") == Decimal("0.5")
    assert parse_quantity("2") == 2
    assert parse_quantity("1Ki") == 1024
    assert parse_quantity("1.5Gi") == Decimal(1.5 * 2**30)
    assert parse_quantity("2e3") == 2000
    assert parse_quantity("1M") == 1_000_000
    with pytest.raises(ValueError):
        parse_quantity("lots")


def test_resource_values_round_up_and_default() -> None:
    container = {"resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "100M"}}}
    assert resource_value(container, "requests.cpu", "1m") == "250"
    assert resource_value(container, "requests.cpu") == "1"
    assert resource_value(container, "requests.memory") == "100000000"  # defaults to the limit
    assert int(resource_value(container, "limits.cpu")) >= 1  # the machine's CPUs
    with pytest.raises(ConfigError):
        resource_value(container, "cpu")


def test_field_values_and_maps() -> None:
    assert field_value(POD, "metadata.namespace") == "ns"
    assert field_value(POD, "metadata.annotations['note']") == 'say "hi"'
    assert field_value(POD, "metadata.labels['absent']") == ""
    assert field_value(POD, "metadata.labels", maps=True) == 'app="web"\ntier="front"'
    assert field_value(POD, "metadata.annotations", maps=True) == 'note="say \\"hi\\""'
    with pytest.raises(ConfigError):
        field_value(POD, "metadata.labels")
    assert format_map({}) == ""
