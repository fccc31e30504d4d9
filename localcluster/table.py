"""Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for.

kubectl prints whatever columns and cells the server sends, so the built-in printers
reproduce upstream's (`pkg/printers/internalversion`) column names and cell text, and
custom resources follow the CRD's `additionalPrinterColumns` as apiextensions does.
The server always prints "wide": priority-1 columns are only hidden by the client.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from localcluster import jsonpath
from localcluster.errors import StatusError, bad_request
from localcluster.resources import PrinterColumn, ResourceType
from localcluster.selectors import LabelSelector

Obj = dict[str, Any]
Cells = Callable[[Obj, datetime], list[Any]]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATION_TIMESTAMP_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

INCLUDE_NONE = "None"
INCLUDE_METADATA = "Metadata"
INCLUDE_OBJECT = "Object"


# ---- durations and timestamps


def human_duration(seconds: float) -> str:
    """kubectl's AGE text (apimachinery `duration.HumanDuration`): coarser as time passes."""
    if not math.isfinite(seconds):
        return "<invalid>"
    s = int(seconds)  # truncates toward zero, like Go
    if s < -1:
        return "<invalid>"  # more than a second of clock skew
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d" if rest == 0 else f"{days}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{years}y"


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})"
)


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`metav1.Time`/`MicroTime`); None if absent or malformed."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        stamp = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, UTC
        )
    except ValueError:
        return None
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        stamp -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return stamp


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _since(value: Any, now: datetime) -> str:
    """Age of a timestamp field; "<unknown>" when unset, as upstream prints a zero time."""
    stamp = parse_timestamp(value)
    if stamp is None:
        return "<unknown>"
    return human_duration((_aware(now) - stamp).total_seconds())


def _rfc3339(value: Any) -> str:
    stamp = parse_timestamp(value)
    if stamp is None:
        return "0001-01-01T00:00:00Z"  # Go's zero time
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- rendering values as Go prints them


def _go_float(value: float) -> str:
    """`fmt.Print` of a float64: shortest digits, exponent form from 1e6 or below 1e-4."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digit_tuple)
    point = len(digits) + exponent  # position of the decimal point within `digits`
    x = point - 1
    prefix = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _go_json(value: Any) -> str:
    """`json.Marshal`: compact, sorted keys, HTML-safe escapes."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _print_text(value: Any) -> str:
    """What upstream's JSONPath printer writes for one value (string printer columns)."""
    if value is None:
        return "<no value>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return _go_json(value)


# ---- small accessors


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return 0


def _meta(obj: Obj) -> Obj:
    return _dict(obj.get("metadata"))


def _name(obj: Obj) -> str:
    return _str(_meta(obj).get("name"))


def _age(obj: Obj, now: datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


def _format_selector(selector: Any, empty: str) -> str:
    """A metav1.LabelSelector in upstream's canonical text; `empty` when it selects all."""
    if not isinstance(selector, dict):
        return empty
    try:
        text = str(LabelSelector.from_dict(selector))
    except StatusError:
        return "<error>"
    return text or empty


def _format_labels(labels: Any) -> str:
    pairs = sorted(_dict(labels).items())
    return ",".join(f"{k}={v}" for k, v in pairs) or "<none>"


def _containers(template_spec: Obj) -> tuple[str, str]:
    containers = [_dict(c) for c in _list(template_spec.get("containers"))]
    names = ",".join(_str(c.get("name")) for c in containers)
    images = ",".join(_str(c.get("image")) for c in containers)
    return names, images


# ---- columns


def _col(
    name: str, description: str, type: str = "string", priority: int = 0, format: str = ""
) -> PrinterColumn:
    return PrinterColumn(
        name=name,
        type=type,
        json_path="",
        description=description,
        priority=priority,
        format=format,
    )


NAME = _col("Name", NAME_DESCRIPTION, format="name")
AGE = _col("Age", CREATION_TIMESTAMP_DESCRIPTION)
CREATED_AT = _col("Created At", CREATION_TIMESTAMP_DESCRIPTION)
CONTAINERS = _col("Containers", "Names of each container in the template.", priority=1)
IMAGES = _col("Images", "Images referenced by each container in the template.", priority=1)


@dataclass(frozen=True)
class _Printer:
    columns: tuple[PrinterColumn, ...]
    cells: Cells
    conditions: Callable[[Obj], list[Obj]] | None = None


# ---- built-in printers


def _configmap(obj: Obj, now: datetime) -> list[Any]:
    count = len(_dict(obj.get("data"))) + len(_dict(obj.get("binaryData")))
    return [_name(obj), count, _age(obj, now)]


def _secret(obj: Obj, now: datetime) -> list[Any]:
    keys = set(_dict(obj.get("data"))) | set(_dict(obj.get("stringData")))
    return [_name(obj), _str(obj.get("type")) or "Opaque", len(keys), _age(obj, now)]


def _namespace(obj: Obj, now: datetime) -> list[Any]:
    phase = _str(_dict(obj.get("status")).get("phase")) or "Active"
    return [_name(obj), phase, _age(obj, now)]


def _name_age(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


def _lease(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _str(_dict(obj.get("spec")).get("holderIdentity")), _age(obj, now)]


def _created_at(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _rfc3339(_meta(obj).get("creationTimestamp"))]


def _has_condition(conditions: Any, type_: str) -> bool:
    return any(
        _dict(c).get("type") == type_ and _dict(c).get("status") == "True"
        for c in _list(conditions)
    )


def _is_sidecar(container: Any) -> bool:
    return _dict(container).get("restartPolicy") == "Always"


@dataclass
class _PodSummary:
    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None


def _later(current: datetime | None, status: Obj) -> datetime | None:
    """The newer of `current` and a container's last termination time."""
    last = _dict(_dict(status.get("lastState")).get("terminated"))
    finished = parse_timestamp(last.get("finishedAt"))
    if finished is None or (current is not None and current >= finished):
        return current
    return finished


def _init_failure(index: int, total: int, status: Obj) -> str:
    """The Init:… STATUS of the first init container that has not succeeded."""
    state = _dict(status.get("state"))
    terminated = state.get("terminated")
    if isinstance(terminated, dict):
        if not terminated.get("reason"):
            if _int(terminated.get("signal")):
                return f"Init:Signal:{_int(terminated.get('signal'))}"
            return f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        return f"Init:{terminated['reason']}"
    waiting = _dict(state.get("waiting"))
    if waiting.get("reason") and waiting["reason"] != "PodInitializing":
        return f"Init:{waiting['reason']}"
    return f"Init:{index}/{total}"


def _summarize_pod(pod: Obj) -> _PodSummary:
    """Ready count, restart count and STATUS text, following upstream's printPod."""
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    phase = _str(status.get("phase"))
    summary = _PodSummary(reason=_str(status.get("reason")) or phase)
    conditions = _list(status.get("conditions"))
    for condition in map(_dict, conditions):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            summary.reason = "SchedulingGated"

    init_specs = [_dict(c) for c in _list(spec.get("initContainers"))]
    sidecars = {_str(c.get("name")) for c in init_specs if _is_sidecar(c)}
    sidecar_restarts = 0
    sidecar_last: datetime | None = None
    initializing = False
    for index, cs in enumerate(map(_dict, _list(status.get("initContainerStatuses")))):
        count = _int(cs.get("restartCount"))
        summary.restarts += count
        summary.last_restart = _later(summary.last_restart, cs)
        is_sidecar = _str(cs.get("name")) in sidecars
        if is_sidecar:
            sidecar_restarts += count
            sidecar_last = _later(sidecar_last, cs)
        terminated = _dict(cs.get("state")).get("terminated")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started") is True:
            summary.ready += 1 if cs.get("ready") else 0
            continue
        summary.reason = _init_failure(index, len(init_specs), cs)
        initializing = True
        break

    if not initializing or _has_condition(conditions, "Initialized"):
        summary.restarts = sidecar_restarts
        summary.last_restart = sidecar_last
        has_running = False
        for cs in reversed([_dict(c) for c in _list(status.get("containerStatuses"))]):
            summary.restarts += _int(cs.get("restartCount"))
            summary.last_restart = _later(summary.last_restart, cs)
            state = _dict(cs.get("state"))
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if isinstance(waiting, dict) and waiting.get("reason"):
                summary.reason = _str(waiting["reason"])
            elif isinstance(terminated, dict) and terminated.get("reason"):
                summary.reason = _str(terminated["reason"])
            elif isinstance(terminated, dict):
                signal = _int(terminated.get("signal"))
                summary.reason = (
                    f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated.get('exitCode'))}"
                )
            elif cs.get("ready") and isinstance(state.get("running"), dict):
                has_running = True
                summary.ready += 1
        if summary.reason == "Completed" and has_running:
            summary.reason = "Running" if _has_condition(conditions, "Ready") else "NotReady"

    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            summary.reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            summary.reason = "Terminating"
    return summary


def _pod(pod: Obj, now: datetime) -> list[Any]:
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    summary = _summarize_pod(pod)
    total = len(_list(spec.get("containers"))) + sum(
        1 for c in _list(spec.get("initContainers")) if _is_sidecar(c)
    )
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        ago = human_duration((_aware(now) - summary.last_restart).total_seconds())
        restarts = f"{summary.restarts} ({ago} ago)"
    pod_ips = _list(status.get("podIPs"))
    ip = _str(_dict(pod_ips[0]).get("ip")) if pod_ips else _str(status.get("podIP"))
    gates = _list(spec.get("readinessGates"))
    readiness = "<none>"
    if gates:
        by_type: dict[Any, Any] = {}
        for condition in map(_dict, _list(status.get("conditions"))):
            by_type.setdefault(condition.get("type"), condition.get("status"))
        passed = sum(1 for g in gates if by_type.get(_dict(g).get("conditionType")) == "True")
        readiness = f"{passed}/{len(gates)}"
    return [
        _name(pod),
        f"{summary.ready}/{total}",
        summary.reason,
        restarts,
        _age(pod, now),
        ip or "<none>",
        _str(spec.get("nodeName")) or "<none>",
        _str(status.get("nominatedNodeName")) or "<none>",
        readiness,
    ]


def _pod_conditions(pod: Obj) -> list[Obj]:
    """Row conditions that let clients recognise finished pods."""
    phase = _dict(pod.get("status")).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


def _job(job: Obj, now: datetime) -> list[Any]:
    spec = _dict(job.get("spec"))
    status = _dict(job.get("status"))
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec['completions'])}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec['parallelism'])}"
    else:
        completions = f"{succeeded}/1"
    started = parse_timestamp(status.get("startTime"))
    finished = parse_timestamp(status.get("completionTime"))
    duration = ""
    if started is not None:
        end = finished if finished is not None else _aware(now)
        duration = human_duration((end - started).total_seconds())
    conditions = status.get("conditions")
    if _has_condition(conditions, "Complete"):
        state = "Complete"
    elif _has_condition(conditions, "Failed"):
        state = "Failed"
    elif _meta(job).get("deletionTimestamp"):
        state = "Terminating"
    elif _has_condition(conditions, "Suspended"):
        state = "Suspended"
    elif _has_condition(conditions, "FailureTarget"):
        state = "FailureTarget"
    elif _has_condition(conditions, "SuccessCriteriaMet"):
        state = "SuccessCriteriaMet"
    else:
        state = "Running"
    names, images = _containers(_dict(_dict(spec.get("template")).get("spec")))
    selector = _format_selector(spec.get("selector"), "<none>")
    return [_name(job), state, completions, duration, _age(job, now), names, images, selector]


def _deployment(obj: Obj, now: datetime) -> list[Any]:
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    desired = _int(spec["replicas"]) if spec.get("replicas") is not None else 1
    names, images = _containers(_dict(_dict(spec.get("template")).get("spec")))
    raw = spec.get("selector")
    selector = _format_selector(raw, "") if isinstance(raw, dict) else ""
    if selector == "<error>":
        selector = "<invalid>"
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{desired}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        names,
        images,
        selector,
    ]


def _service_external_ip(spec: Obj, status: Obj, type_: str) -> str:
    external = [_str(ip) for ip in _list(spec.get("externalIPs"))]
    if type_ in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if type_ == "LoadBalancer":
        ingress = _list(_dict(status.get("loadBalancer")).get("ingress"))
        balancers = [
            _str(_dict(i).get("ip")) or _str(_dict(i).get("hostname"))
            for i in ingress
            if _dict(i).get("ip") or _dict(i).get("hostname")
        ]
        return ",".join(balancers + external) or "<pending>"
    if type_ == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _service(obj: Obj, now: datetime) -> list[Any]:
    spec = _dict(obj.get("spec"))
    type_ = _str(spec.get("type")) or "ClusterIP"
    cluster_ips = _list(spec.get("clusterIPs"))
    cluster_ip = _str(cluster_ips[0]) if cluster_ips else _str(spec.get("clusterIP"))
    ports = []
    for port in map(_dict, _list(spec.get("ports"))):
        protocol = _str(port.get("protocol")) or "TCP"
        node_port = _int(port.get("nodePort"))
        number = _int(port.get("port"))
        ports.append(f"{number}:{node_port}/{protocol}" if node_port else f"{number}/{protocol}")
    return [
        _name(obj),
        type_,
        cluster_ip or "<none>",
        _service_external_ip(spec, _dict(obj.get("status")), type_),
        ",".join(ports) or "<none>",
        _age(obj, now),
        _format_labels(spec.get("selector")),
    ]


def _event(event: Obj, now: datetime) -> list[Any]:
    if event.get("firstTimestamp"):
        first = _since(event["firstTimestamp"], now)
    else:
        first = _since(event.get("eventTime"), now)
    last = _since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = _int(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events carry no count in the new API
    involved = _dict(event.get("involvedObject"))
    kind = _str(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = _dict(event.get("source"))
    component = _str(source.get("component")) or _str(event.get("reportingComponent"))
    instance = _str(source.get("host")) or _str(event.get("reportingInstance"))
    return [
        last,
        _str(event.get("type")),
        _str(event.get("reason")),
        target,
        _str(involved.get("fieldPath")),
        f"{component}, {instance}" if instance else component,
        _str(event.get("message")).strip(),
        first,
        count,
        _name(event),
    ]


def _events_v1(event: Obj, now: datetime) -> list[Any]:
    """events.k8s.io/v1 Events print as their core/v1 equivalent, as upstream does."""
    renamed = {
        "regarding": "involvedObject",
        "note": "message",
        "deprecatedFirstTimestamp": "firstTimestamp",
        "deprecatedLastTimestamp": "lastTimestamp",
        "deprecatedCount": "count",
        "deprecatedSource": "source",
        "reportingController": "reportingComponent",
    }
    core = {renamed.get(k, k): v for k, v in event.items()}
    return _event(core, now)


def _binding(obj: Obj, now: datetime) -> list[Any]:
    ref = _dict(obj.get("roleRef"))
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for subject in map(_dict, _list(obj.get("subjects"))):
        kind, name = _str(subject.get("kind")), _str(subject.get("name"))
        if kind == "ServiceAccount":
            accounts.append(f"{_str(subject.get('namespace'))}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return [
        _name(obj),
        f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}",
        _age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(accounts),
    ]


def _webhooks(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), len(_list(obj.get("webhooks"))), _age(obj, now)]


def _network_policy(obj: Obj, now: datetime) -> list[Any]:
    selector = _dict(_dict(obj.get("spec")).get("podSelector"))
    return [_name(obj), _format_selector(selector, "<none>"), _age(obj, now)]


def _endpoints_text(obj: Obj, shown: int = 3) -> str:
    subsets = [_dict(s) for s in _list(obj.get("subsets"))]
    if not subsets:
        return "<none>"
    listed: list[str] = []
    total = 0
    for subset in subsets:
        addresses = [_str(_dict(a).get("ip")) for a in _list(subset.get("addresses"))]
        ports = [_int(_dict(p).get("port")) for p in _list(subset.get("ports"))]
        if not ports:
            total += len(addresses)
            listed.extend(addresses[: max(0, shown - len(listed))])
            continue
        for port in ports:
            total += len(addresses)
            for ip in addresses[: max(0, shown - len(listed))]:
                listed.append(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
    text = ",".join(listed)
    return f"{text} + {total - shown} more..." if total > shown else text


def _endpoints(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _endpoints_text(obj), _age(obj, now)]


_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _pvc(obj: Obj, now: datetime) -> list[Any]:
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    phase = _str(status.get("phase")) or "Pending"
    if _meta(obj).get("deletionTimestamp"):
        phase = "Terminating"
    volume = _str(spec.get("volumeName"))
    capacity = modes = ""
    if volume:
        have = set(_list(status.get("accessModes")))
        modes = ",".join(short for mode, short in _ACCESS_MODES if mode in have)
        capacity = _str(_dict(status.get("capacity")).get("storage"))
    annotations = _dict(_meta(obj).get("annotations"))
    storage_class = _str(annotations.get("volume.beta.kubernetes.io/storage-class")) or _str(
        spec.get("storageClassName")
    )
    return [
        _name(obj),
        phase,
        volume,
        capacity,
        modes,
        storage_class or "<unset>",
        _str(spec.get("volumeAttributesClassName")) or "<unset>",
        _age(obj, now),
        _str(spec.get("volumeMode")) or "<unset>",
    ]


def _binding_columns(kind: str) -> tuple[PrinterColumn, ...]:
    return (
        NAME,
        _col("Role", "RoleRef can reference a Role in the current namespace or a ClusterRole."),
        AGE,
        _col("Users", f"Users in the {kind}", priority=1),
        _col("Groups", f"Groups in the {kind}", priority=1),
        _col("ServiceAccounts", f"ServiceAccounts in the {kind}", priority=1),
    )


_EVENT_COLUMNS = (
    _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    _col("Type", "Type of this event (Normal, Warning)."),
    _col("Reason", "A short, machine understandable string describing the event."),
    _col("Object", "The object that this event is about."),
    _col("Subobject", "The part of the object this event is about.", priority=1),
    _col("Source", "The component reporting this event.", priority=1),
    _col("Message", "A human-readable description of the status of this operation."),
    _col("First Seen", "The time at which the event was first recorded.", priority=1),
    _col("Count", "The number of times this event has occurred.", priority=1),
    _col("Name", NAME_DESCRIPTION, priority=1, format="name"),
)
_WEBHOOK_COLUMNS = (
    NAME,
    _col(
        "Webhooks",
        "Webhooks indicates the number of webhooks in the configuration.",
        type="integer",
    ),
    AGE,
)

_BUILTIN: dict[tuple[str, str], _Printer] = {
    ("", "ConfigMap"): _Printer(
        (NAME, _col("Data", "Number of data and binaryData entries."), AGE), _configmap
    ),
    ("", "Secret"): _Printer(
        (
            NAME,
            _col("Type", "Used to facilitate programmatic handling of secret data."),
            _col("Data", "Number of data entries."),
            AGE,
        ),
        _secret,
    ),
    ("", "Namespace"): _Printer(
        (NAME, _col("Status", "The status of the namespace"), AGE), _namespace
    ),
    ("", "ServiceAccount"): _Printer((NAME, AGE), _name_age),
    ("", "Pod"): _Printer(
        (
            NAME,
            _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", "The aggregate status of the containers in this pod."),
            _col(
                "Restarts",
                "The number of times the containers in this pod have been restarted and when "
                "the last container in this pod has restarted.",
            ),
            AGE,
            _col("IP", "IP address allocated to the pod.", priority=1),
            _col("Node", "The node the pod is scheduled onto.", priority=1),
            _col("Nominated Node", "The node the scheduler nominated for preemption.", priority=1),
            _col(
                "Readiness Gates",
                "If specified, all readiness gates will be evaluated for pod readiness.",
                priority=1,
            ),
        ),
        _pod,
        _pod_conditions,
    ),
    ("batch", "Job"): _Printer(
        (
            NAME,
            _col("Status", "Status of the job."),
            _col("Completions", "The desired number of successfully finished pods."),
            _col("Duration", "Time required to complete the job."),
            AGE,
            CONTAINERS,
            IMAGES,
            _col(
                "Selector", "A label query over pods that should match the pod count.", priority=1
            ),
        ),
        _job,
    ),
    ("apps", "Deployment"): _Printer(
        (
            NAME,
            _col("Ready", "Number of the pod with ready state"),
            _col("Up-to-date", "Total number of non-terminated pods with the desired template."),
            _col("Available", "Total number of available pods (ready for minReadySeconds)."),
            AGE,
            CONTAINERS,
            IMAGES,
            _col("Selector", "Label selector for pods.", priority=1),
        ),
        _deployment,
    ),
    ("", "Service"): _Printer(
        (
            NAME,
            _col("Type", "How the Service is exposed."),
            _col("Cluster-IP", "The IP address of the service."),
            _col("External-IP", "IP addresses for which nodes also accept traffic."),
            _col("Port(s)", "The list of ports that are exposed by this service."),
            AGE,
            _col("Selector", "Route service traffic to pods with these labels.", priority=1),
        ),
        _service,
    ),
    ("", "Event"): _Printer(_EVENT_COLUMNS, _event),
    ("events.k8s.io", "Event"): _Printer(_EVENT_COLUMNS, _events_v1),
    ("coordination.k8s.io", "Lease"): _Printer(
        (NAME, _col("Holder", "The identity of the holder of a current lease."), AGE), _lease
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _Printer(
        (NAME, replace(CREATED_AT, type="date")), _created_at
    ),
    ("rbac.authorization.k8s.io", "Role"): _Printer((NAME, CREATED_AT), _created_at),
    ("rbac.authorization.k8s.io", "ClusterRole"): _Printer((NAME, CREATED_AT), _created_at),
    ("rbac.authorization.k8s.io", "RoleBinding"): _Printer(
        _binding_columns("roleBinding"), _binding
    ),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _Printer(
        _binding_columns("clusterRoleBinding"), _binding
    ),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _Printer(
        _WEBHOOK_COLUMNS, _webhooks
    ),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _Printer(
        _WEBHOOK_COLUMNS, _webhooks
    ),
    ("networking.k8s.io", "NetworkPolicy"): _Printer(
        (NAME, _col("Pod-Selector", "Selects the pods to which this policy applies."), AGE),
        _network_policy,
    ),
    ("", "Endpoints"): _Printer(
        (NAME, _col("Endpoints", "The set of all endpoints is the union of all subsets."), AGE),
        _endpoints,
    ),
    ("", "PersistentVolumeClaim"): _Printer(
        (
            NAME,
            _col("Status", "The current phase of the claim."),
            _col("Volume", "The binding reference to the PersistentVolume backing this claim."),
            _col("Capacity", "The actual resources of the underlying volume."),
            _col("Access Modes", "The actual access modes the volume backing the PVC has."),
            _col("StorageClass", "StorageClass of the pvc"),
            _col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
            AGE,
            _col("VolumeMode", "What type of volume is required by the claim.", priority=1),
        ),
        _pvc,
    ),
}

_DEFAULT = _Printer((NAME, AGE), _name_age)


# ---- custom resources


def _typed_cell(type_: str, value: Any, now: datetime) -> Any:
    """A non-string printer column cell, keeping its JSON type (apiextensions' rules)."""
    if value is None:
        return None
    if type_ == "integer" and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return int(value)
    elif type_ == "number" and not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
    elif type_ == "boolean":
        if isinstance(value, bool):
            return value
    elif type_ == "date" and isinstance(value, str):
        if value in ("", "null"):
            return "<unknown>"
        stamp = parse_timestamp(value)
        if stamp is None:
            return "<invalid>"
        return human_duration((_aware(now) - stamp).total_seconds())
    return None


def _column_path(path: str) -> Callable[[Any], list[Any]] | None:
    try:
        return jsonpath.compile_path(path)
    except ValueError:
        return None  # upstream rejects such CRDs; print empty cells rather than fail


def _custom_printer(rt: ResourceType) -> _Printer:
    declared = rt.printer_columns or (
        PrinterColumn(
            name="Age",
            type="date",
            json_path=".metadata.creationTimestamp",
            description=CREATION_TIMESTAMP_DESCRIPTION,
        ),
    )
    columns = tuple(
        replace(
            c,
            description=c.description
            or f"Custom resource definition column (in JSONPath format): {c.json_path}",
        )
        for c in declared
    )
    paths = [_column_path(c.json_path) for c in columns]

    def cells(obj: Obj, now: datetime) -> list[Any]:
        out: list[Any] = [_name(obj)]
        for column, path in zip(columns, paths, strict=True):
            results = path(obj) if path is not None else []
            if not results:
                out.append(None)
            elif column.type == "string":
                out.append(_print_text(results[0]))
            else:
                out.append(_typed_cell(column.type, results[0], now))
        return out

    return _Printer((NAME, *columns), cells)


@functools.lru_cache(maxsize=256)
def _printer(rt: ResourceType) -> _Printer:
    if rt.custom:
        return _custom_printer(rt)
    return _BUILTIN.get((rt.group, rt.kind), _DEFAULT)


# ---- public API


def _column_dict(column: PrinterColumn) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "format": column.format,
        "description": column.description,
        "priority": column.priority,
    }


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    """The `columnDefinitions` of every table of this resource."""
    return [_column_dict(c) for c in _printer(rt).columns]


def _include_mode(include_object: str) -> str:
    if include_object in ("", INCLUDE_METADATA):
        return INCLUDE_METADATA
    if include_object in (INCLUDE_NONE, INCLUDE_OBJECT):
        return include_object
    raise bad_request(f"unrecognized includeObject value: {json.dumps(include_object)}")


def row(
    rt: ResourceType, obj: dict[str, Any], include_object: str, now: datetime
) -> dict[str, Any]:
    """One table row; `include_object` is the `includeObject` query parameter."""
    mode = _include_mode(include_object)
    printer = _printer(rt)
    out: dict[str, Any] = {"cells": printer.cells(obj, now)}
    if printer.conditions is not None and (conditions := printer.conditions(obj)):
        out["conditions"] = conditions
    if mode == INCLUDE_OBJECT:
        out["object"] = obj
    elif mode == INCLUDE_METADATA:
        out["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {}),
        }
    else:
        out["object"] = None
    return out


def table(
    rt: ResourceType,
    objs: list[dict[str, Any]],
    *,
    resource_version: str,
    include_object: str,
    now: datetime,
    continue_token: str = "",
    remaining: int | None = None,
) -> dict[str, Any]:
    """A whole `Table` for a list, a single object, or one watch event."""
    _include_mode(include_object)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(rt),
        "rows": [row(rt, obj, include_object, now) for obj in objs],
    }
