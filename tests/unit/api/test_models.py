"""The v1alpha1 models: wire names, defaults, round trips, required fields, task forms."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

import api.v1alpha1 as v1
from api.v1alpha1 import (
    API_VERSION,
    GROUP,
    KINDS,
    VERSION,
    AgentRun,
    AgentRunPhase,
    AgentRunSpec,
    AgentRunStatus,
    Condition,
    MCPServer,
    ModelSpec,
    ObjectMeta,
    PersonaPack,
    SkillPack,
    SympoziumConfig,
    SympoziumInstance,
    SympoziumPolicy,
    SympoziumSchedule,
    TaskSpec,
)
from api.v1alpha1.common import _Resource

from .samples import FULL, MINIMAL, full, minimal

BY_KIND: dict[str, type[_Resource]] = {cls.KIND: cls for cls in KINDS}


def assert_contains(actual: Any, expected: Any, path: str = "") -> None:
    """Every key and value of `expected` is in `actual` (extra keys in `actual` allowed)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} was lost"
            assert_contains(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_contains(a, e, f"{path}[{i}]")
    else:
        assert actual == expected and type(actual) is type(expected), (
            f"{path}: {actual!r} != {expected!r}"
        )


def test_group_constants() -> None:
    assert (GROUP, VERSION, API_VERSION) == ("sympozium.ai", "v1alpha1", "sympozium.ai/v1alpha1")


def test_every_kind_is_exported_with_its_class_attributes() -> None:
    assert [cls.KIND for cls in KINDS] == [
        "AgentRun",
        "SympoziumInstance",
        "PersonaPack",
        "SkillPack",
        "SympoziumPolicy",
        "SympoziumSchedule",
        "MCPServer",
        "SympoziumConfig",
    ]
    for cls in KINDS:
        assert cls.API_VERSION == API_VERSION
        obj = cls.from_obj(MINIMAL[cls.KIND])
        assert (obj.api_version, obj.kind) == (API_VERSION, cls.KIND)


def test_exported_names_are_exactly_the_public_ones() -> None:
    assert len(set(v1.__all__)) == len(v1.__all__)
    for name in v1.__all__:
        assert hasattr(v1, name), name
    public = {n for n in dir(v1) if not n.startswith("_")} - {
        "agentrun",
        "common",
        "config",
        "crdgen",
        "instance",
        "mcpserver",
        "personapack",
        "policy",
        "schedule",
        "skillpack",
        "annotations",
    }
    assert public == set(v1.__all__)


@pytest.mark.parametrize("kind", sorted(FULL))
def test_full_object_round_trips_through_json(kind: str) -> None:
    cls = BY_KIND[kind]
    source = full(kind)
    model = cls.from_obj(source)
    wire = json.loads(json.dumps(model.to_obj()))
    assert_contains(wire, source)
    assert cls.from_obj(wire) == model
    assert cls.from_obj(wire).to_obj() == wire


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_minimal_object_gets_the_model_defaults_and_round_trips(kind: str) -> None:
    cls = BY_KIND[kind]
    model = cls.from_obj(minimal(kind))
    wire = json.loads(json.dumps(model.to_obj()))
    assert_contains(wire, minimal(kind))
    assert cls.from_obj(wire) == model
    assert "status" not in wire


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("SympoziumSchedule", ("spec", "includeMemory")),
        ("SympoziumSchedule", ("spec", "suspend")),
        ("SympoziumInstance", ("spec", "memory", "enabled")),
        ("SympoziumPolicy", ("spec", "networkPolicy", "denyAll")),
        ("SympoziumPolicy", ("spec", "networkPolicy", "allowDNS")),
        ("SympoziumPolicy", ("spec", "featureGates", "code-execution")),
        ("SkillPack", ("spec", "sidecar", "mountWorkspace")),
        ("SkillPack", ("spec", "sidecar", "hostAccess", "mounts", 0, "readOnly")),
        ("PersonaPack", ("spec", "enabled")),
        ("PersonaPack", ("spec", "personas", 0, "memory", "enabled")),
        ("MCPServer", ("status", "ready")),
        ("SympoziumConfig", ("spec", "gateway", "tls", "enabled")),
        ("AgentRun", ("spec", "sandbox", "enabled")),
    ],
)
def test_explicit_false_survives_a_round_trip(kind: str, path: tuple[str | int, ...]) -> None:
    def dig(obj: Any) -> Any:
        for key in path:
            obj = obj[key]
        return obj

    source = full(kind)
    assert dig(source) is False
    assert dig(BY_KIND[kind].from_obj(source).to_obj()) is False


def test_acronym_aliases_are_spelled_as_on_the_wire() -> None:
    run = AgentRun.from_obj(full("AgentRun"))
    assert run.spec.model.base_url == "http://127.0.0.1:11434/v1"
    assert run.status is not None and run.status.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    wire = run.to_obj()
    assert "baseURL" in wire["spec"]["model"] and "traceID" in wire["status"]

    instance = SympoziumInstance.from_obj(full("SympoziumInstance"))
    assert instance.spec.memory is not None and instance.spec.memory.max_size_kb == 512
    assert instance.spec.agents.default.base_url == "http://llm/v1"
    assert instance.spec.observability is not None
    assert instance.spec.observability.otlp_endpoint == "otel:4317"
    assert "maxSizeKB" in instance.to_obj()["spec"]["memory"]

    pack = SkillPack.from_obj(full("SkillPack"))
    sidecar = pack.spec.sidecar
    assert sidecar is not None and sidecar.host_access is not None
    assert sidecar.host_access.host_pid is True
    assert sidecar.cluster_rbac[0].resources == ["nodes"]
    assert pack.spec.runtime_requirements is not None
    assert pack.spec.runtime_requirements.min_cpu == "1"

    policy = SympoziumPolicy.from_obj(full("SympoziumPolicy"))
    assert policy.spec.sandbox_policy is not None and policy.spec.sandbox_policy.max_cpu == "2"
    assert policy.spec.network_policy is not None
    assert policy.spec.network_policy.allow_dns is False

    persona = PersonaPack.from_obj(full("PersonaPack"))
    assert persona.spec.base_url == "http://llm/v1"


def test_snake_case_names_are_accepted_too() -> None:
    spec = AgentRunSpec(
        instance_ref="alice",
        agent_id="primary",
        session_key="",
        task="hi",
        model=ModelSpec(provider="openai", model="m", auth_secret_ref="", base_url="http://x"),
    )
    run = AgentRun(metadata=ObjectMeta(name="r", namespace="n"), spec=spec)
    wire = run.to_obj()
    assert wire["apiVersion"] == API_VERSION and wire["kind"] == "AgentRun"
    assert wire["spec"]["model"]["baseURL"] == "http://x"
    assert wire["spec"]["instanceRef"] == "alice"
    assert wire["metadata"]["name"] == "r"


def test_defaults_of_the_spec() -> None:
    run = AgentRun.from_obj(minimal("AgentRun"))
    assert (run.spec.cleanup, run.spec.mode, run.spec.skills, run.status) == (
        "delete",
        "task",
        [],
        None,
    )
    schedule = SympoziumSchedule.from_obj(minimal("SympoziumSchedule"))
    assert schedule.spec.type == "scheduled"
    assert schedule.spec.concurrency_policy == "Forbid"
    assert schedule.spec.include_memory is True
    mcp = MCPServer.from_obj(minimal("MCPServer"))
    assert (mcp.spec.timeout, mcp.spec.replicas) == (30, 1)
    instance = SympoziumInstance.from_obj(
        {**minimal("SympoziumInstance"), "spec": {**minimal("SympoziumInstance")["spec"]}}
        | {"spec": {"agents": {"default": {"model": "m"}}, "memory": {}, "mcpServers": []}}
    )
    assert instance.spec.memory is not None
    assert (instance.spec.memory.enabled, instance.spec.memory.max_size_kb) == (True, 256)
    policy = SympoziumPolicy.from_obj(
        {
            **minimal("SympoziumPolicy"),
            "spec": {"subagentPolicy": {}, "toolGating": {}, "networkPolicy": {}},
        }
    )
    assert policy.spec.subagent_policy is not None and policy.spec.tool_gating is not None
    assert policy.spec.network_policy is not None
    assert (policy.spec.subagent_policy.max_depth, policy.spec.subagent_policy.max_concurrent) == (
        3,
        5,
    )
    assert policy.spec.tool_gating.default_action == "allow"
    net = policy.spec.network_policy
    assert (net.deny_all, net.allow_dns, net.allow_event_bus) == (True, True, True)
    config = SympoziumConfig.from_obj(
        {**minimal("SympoziumConfig"), "spec": {"gateway": {"tls": {}}}}
    )
    gateway = config.spec.gateway
    assert gateway is not None and gateway.tls is not None
    assert (gateway.enabled, gateway.gateway_class_name, gateway.name) == (
        False,
        "sympozium",
        "sympozium-gateway",
    )
    assert gateway.tls.secret_name == "sympozium-wildcard-cert"


def test_unknown_keys_are_ignored_but_metadata_keeps_everything() -> None:
    source = minimal("AgentRun")
    source["spec"]["fromTheFuture"] = {"x": 1}
    source["spec"]["model"]["newKnob"] = True
    source["status"] = {"phase": "Running", "somethingNew": 1}
    source["metadata"].update(
        {
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            "labels": {"sympozium.ai/instance": "alice"},
            "ownerReferences": [
                {
                    "apiVersion": "sympozium.ai/v1alpha1",
                    "kind": "SympoziumInstance",
                    "name": "alice",
                    "uid": "u-1",
                    "controller": True,
                    "futureOwnerField": "kept",
                }
            ],
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2025-01-02T03:04:05Z",
            "deletionTimestamp": "2025-01-02T03:04:06Z",
            "finalizers": ["sympozium.ai/agentrun-finalizer"],
            "uid": "abc",
        }
    )
    run = AgentRun.from_obj(source)
    wire = run.to_obj()
    assert "fromTheFuture" not in wire["spec"] and "newKnob" not in wire["spec"]["model"]
    assert "somethingNew" not in wire["status"]
    assert wire["metadata"] == {**source["metadata"], "annotations": {}}
    assert run.metadata.deletion_timestamp == datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert run.metadata.owner_references[0].controller is True


@pytest.mark.parametrize(
    "task",
    ["plain text task", {"prompt": "fix it"}, {"prompt": "fix it", "context": "issue 12"}],
)
def test_both_task_forms_round_trip_unchanged(task: str | dict[str, str]) -> None:
    source = minimal("AgentRun")
    source["spec"]["task"] = task
    wire = json.loads(json.dumps(AgentRun.from_obj(source).to_obj()))
    assert wire["spec"]["task"] == task


def test_task_text() -> None:
    def text(task: Any) -> str:
        source = minimal("AgentRun")
        source["spec"]["task"] = task
        return AgentRun.from_obj(source).spec.task_text

    assert text("just do it") == "just do it"
    assert text({"prompt": "fix it"}) == "fix it"
    assert text({"prompt": "fix it", "context": "issue 12"}) == "fix it\n\nissue 12"
    assert text({"prompt": "fix it", "context": ""}) == "fix it"
    run = AgentRun.from_obj(full("AgentRun"))
    assert isinstance(run.spec.task, TaskSpec)


@pytest.mark.parametrize(
    "task", [{"context": "no prompt"}, {"prompt": 3}, 42, ["a"], {"prompt": "p", "context": [1]}]
)
def test_bad_task_is_rejected_naming_the_field(task: Any) -> None:
    source = minimal("AgentRun")
    source["spec"]["task"] = task
    with pytest.raises(ValidationError) as caught:
        AgentRun.from_obj(source)
    assert all(error["loc"][:2] == ("spec", "task") for error in caught.value.errors())


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [(None, 600.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("500ms", 0.5)],
)
def test_timeout_seconds(timeout: str | None, seconds: float) -> None:
    source = minimal("AgentRun")
    if timeout is not None:
        source["spec"]["timeout"] = timeout
    assert AgentRun.from_obj(source).spec.timeout_seconds() == seconds


def test_timeout_seconds_default_is_used_when_unset() -> None:
    assert AgentRun.from_obj(minimal("AgentRun")).spec.timeout_seconds(default=30.0) == 30.0


@pytest.mark.parametrize("timeout", ["10", "ten minutes", "-5m", "1d", "", "5 m"])
def test_bad_timeout_is_rejected_by_the_model(timeout: str) -> None:
    source = minimal("AgentRun")
    source["spec"]["timeout"] = timeout
    with pytest.raises(ValidationError) as caught:
        AgentRun.from_obj(source)
    assert caught.value.errors()[0]["loc"] == ("spec", "timeout")


@pytest.mark.parametrize(
    ("kind", "path", "missing"),
    [
        ("AgentRun", ("spec",), "instanceRef"),
        ("AgentRun", ("spec",), "task"),
        ("AgentRun", ("spec",), "model"),
        ("AgentRun", ("spec", "model"), "authSecretRef"),
        ("SympoziumInstance", ("spec",), "agents"),
        ("SympoziumInstance", ("spec", "agents", "default"), "model"),
        ("PersonaPack", ("spec", "personas", 0), "systemPrompt"),
        ("SkillPack", ("spec", "skills", 0), "content"),
        ("SympoziumSchedule", ("spec",), "schedule"),
        ("MCPServer", ("spec",), "toolsPrefix"),
        ("MCPServer", (), "spec"),
    ],
)
def test_missing_required_field_is_named(
    kind: str, path: tuple[str | int, ...], missing: str
) -> None:
    source = minimal(kind)
    parent: Any = source
    for key in path:
        parent = parent[key]
    del parent[missing]
    with pytest.raises(ValidationError) as caught:
        BY_KIND[kind].from_obj(source)
    locs = [error["loc"] for error in caught.value.errors()]
    assert (*path, missing) in locs
    dotted = ".".join(str(p) for p in (*path, missing))
    assert dotted in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("AgentRun", ("spec", "mode"), "daemon"),
        ("AgentRun", ("spec", "cleanup"), "OnFailure"),
        ("AgentRun", ("spec", "model", "thinking"), "max"),
        ("SympoziumSchedule", ("spec", "concurrencyPolicy"), "forbid"),
        ("SympoziumSchedule", ("spec", "type"), "daily"),
        ("MCPServer", ("spec", "transportType"), "sse"),
        ("MCPServer", ("spec", "toolsPrefix"), ""),
        ("SympoziumInstance", ("spec", "channels"), [{"type": "irc"}]),
    ],
)
def test_bad_values_are_rejected(kind: str, path: tuple[str, ...], value: Any) -> None:
    source = minimal(kind)
    parent: Any = source
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(ValidationError) as caught:
        BY_KIND[kind].from_obj(source)
    assert caught.value.errors()[0]["loc"][: len(path)] == path


def test_status_phase_enum_and_empty_phase() -> None:
    assert [p.value for p in AgentRunPhase] == [
        "Pending",
        "Running",
        "Serving",
        "Succeeded",
        "Failed",
    ]
    assert AgentRunStatus.model_validate({"phase": ""}).phase is None
    status = AgentRunStatus.model_validate({"phase": "Serving"})
    assert status.phase is AgentRunPhase.SERVING
    assert AgentRunStatus(phase=AgentRunPhase.FAILED).model_dump(by_alias=True, mode="json")[
        "phase"
    ] == ("Failed")
    with pytest.raises(ValidationError):
        AgentRunStatus.model_validate({"phase": "Exploded"})


def test_status_is_optional_everywhere() -> None:
    for cls in KINDS:
        status_type = cls.model_fields["status"].annotation
        assert status_type is not None
        args = getattr(status_type, "__args__", ())
        status_cls = next(a for a in args if a is not type(None))
        status_cls.model_validate({})


def test_times_are_rfc3339_utc_seconds() -> None:
    status = AgentRunStatus(
        started_at=datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        completed_at=datetime(2025, 1, 2, 3, 4, 6),
    )
    wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert wire["startedAt"] == "2025-01-02T03:04:05Z"
    assert wire["completedAt"] == "2025-01-02T03:04:06Z"


def test_condition() -> None:
    cond = Condition.model_validate(
        {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z"}
    )
    assert cond.last_transition_time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(ValidationError):
        Condition.model_validate({"type": "Ready", "status": "yes"})


def test_resource_quantities_accept_numbers() -> None:
    source = minimal("AgentRun")
    source["spec"]["sandbox"] = {"enabled": True, "resources": {"limits": {"cpu": 2}}}
    run = AgentRun.from_obj(source)
    assert run.spec.sandbox is not None and run.spec.sandbox.resources is not None
    assert run.spec.sandbox.resources.limits == {"cpu": "2"}
