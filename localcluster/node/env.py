"""A container's environment, the way the kubelet builds it.

`envFrom` sources first (later ones win), then `env` in order; a value may use
`$(NAME)` of anything defined before it, and `command`/`args` may use the final set.
ConfigMaps and Secrets are read when the container starts, so a missing one (or key)
makes the container wait (`CreateContainerConfigError`) until it appears, unless the
reference is `optional`.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]
# Reads a namespaced object: (kind, namespace, name) -> the object, or None if not found.
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]

POD_IP = "127.0.0.1"
HOST_IP = "127.0.0.1"


class ConfigError(Exception):
    """A container cannot be configured yet; the kubelet retries, and so do we."""

    reason = "CreateContainerConfigError"


# ---- $(VAR) expansion


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` is a literal `$`, unknown names stay as written."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : close]
            value = lookup(name)
            out.append(f"$({name})" if value is None else value)
            i = close + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


def expand_all(items: list[str], env: Mapping[str, str]) -> list[str]:
    return [expand(item, env.get) for item in items]


# ---- quantities (for resourceFieldRef)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]*)$")


def parse_quantity(value: object) -> Decimal:
    """A resource quantity (`500m`, `1Gi`, `2e3`, `4`) as a number."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"invalid quantity {text!r}")
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"invalid quantity {text!r}") from None
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix in _DECIMAL:
        return base * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        return base * (Decimal(10) ** int(suffix[1:]))
    raise ValueError(f"invalid quantity {text!r}")


def node_allocatable(resource: str) -> Decimal:
    """What a container without a limit may use: the whole machine, like the kubelet says."""
    if resource == "cpu":
        return Decimal(os.cpu_count() or 1)
    if resource == "memory":
        try:
            return Decimal(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError):
            return Decimal(0)
    if resource == "ephemeral-storage":
        stat = os.statvfs("/")
        return Decimal(stat.f_blocks * stat.f_frsize)
    return Decimal(0)


def resource_value(container: Obj, resource: str, divisor: object = None) -> str:
    """`resourceFieldRef`'s value: `limits.cpu` etc., rounded up in units of `divisor`."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise ConfigError(f"unsupported container resource: {resource}")
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    raw: Any
    if kind == "limits":
        raw = limits.get(name)
        amount = parse_quantity(raw) if raw is not None else node_allocatable(name)
    else:
        raw = requests.get(name, limits.get(name))  # the API defaults requests to limits
        amount = parse_quantity(raw) if raw is not None else Decimal(0)
    try:
        unit = parse_quantity(divisor) if divisor not in (None, "", 0, "0") else Decimal(1)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if unit == 0:
        unit = Decimal(1)
    return str(math.ceil(amount / unit))


# ---- the downward API


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def field_value(pod: Obj, path: str, *, maps: bool = False) -> str:
    """A `fieldRef`'s value; whole label/annotation maps only for volumes (`maps`)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": HOST_IP,
        "status.hostIPs": HOST_IP,
    }
    if path in simple:
        return str(simple[path] or "")
    match = _SUBSCRIPT.match(path)
    if match is not None:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if maps and path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".", 1)[1]) or {})
    raise ConfigError(f"unsupported fieldPath: {path}")


def format_map(values: Mapping[str, str]) -> str:
    """`key="value"` lines, sorted, as the downward API writes labels and annotations."""
    return "\n".join(f"{key}={_quote(str(values[key]))}" for key in sorted(values))


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


# ---- building the environment


def decode_secret_value(value: object) -> str:
    return base64.b64decode(str(value)).decode("utf-8", "surrogateescape")


async def _source(fetch: Fetch, kind: str, namespace: str, name: str, optional: bool) -> Obj | None:
    found = await fetch(kind, namespace, name)
    if found is None and not optional:
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    return found


async def build_env(
    pod: Obj,
    container: Obj,
    fetch: Fetch,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's variables over `base` (service and image defaults)."""
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    env: dict[str, str] = dict(base or {})
    for source in container.get("envFrom") or ():
        prefix = str(source.get("prefix") or "")
        if "configMapRef" in source:
            ref = source["configMapRef"] or {}
            found = await _source(
                fetch, "ConfigMap", namespace, ref.get("name", ""), bool(ref.get("optional"))
            )
            values = {k: str(v) for k, v in ((found or {}).get("data") or {}).items()}
        elif "secretRef" in source:
            ref = source["secretRef"] or {}
            found = await _source(
                fetch, "Secret", namespace, ref.get("name", ""), bool(ref.get("optional"))
            )
            values = {
                k: decode_secret_value(v) for k, v in ((found or {}).get("data") or {}).items()
            }
        else:
            continue
        for key, value in values.items():
            if "=" not in key and (prefix + key):
                env[prefix + key] = value
    for var in container.get("env") or ():
        name = str(var.get("name", ""))
        if not name:
            continue
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value") or ""), env.get)
            continue
        found_value = await _value_from(
            pod, container, var.get("valueFrom") or {}, fetch, namespace
        )
        if found_value is not None:
            env[name] = found_value
    return env


async def _value_from(
    pod: Obj, container: Obj, source: Obj, fetch: Fetch, namespace: str
) -> str | None:
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"] or {}
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        found = await _source(fetch, "ConfigMap", namespace, name, optional)
        data = (found or {}).get("data") or {}
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in ConfigMap {namespace}/{name}")
        return str(data[key])
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"] or {}
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        found = await _source(fetch, "Secret", namespace, name, optional)
        data = (found or {}).get("data") or {}
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in Secret {namespace}/{name}")
        return decode_secret_value(data[key])
    if "fieldRef" in source:
        return field_value(pod, str((source["fieldRef"] or {}).get("fieldPath", "")))
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"] or {}
        target = _container_named(pod, ref.get("containerName")) or container
        return resource_value(target, str(ref.get("resource", "")), ref.get("divisor"))
    raise ConfigError(f"unsupported valueFrom: {sorted(source)}")


def _container_named(pod: Obj, name: object) -> Obj | None:
    if not name:
        return None
    spec = pod.get("spec") or {}
    for group in ("containers", "initContainers"):
        for container in spec.get(group) or ():
            if container.get("name") == name:
                found: Obj = container
                return found
    return None
