"""The AgentRun reconciler, task mode: a run becomes a Job, and the Job's outcome the run's.

Reads top to bottom like reconcilers.md §1 with the fixes gaps.md asks for:

    reconcile      -> deleted?  cleanup, drop the finalizer
                   -> finished? short-lived RBAC gone, finalizer dropped, history pruned
                   -> first sight: finalizer, instance label, trace annotation
                   -> Pending:  policy check (fail once), then the run's objects and its Job
                   -> Running:  agent container done? extract result; timeout? fail

Every object made for a run carries `sympozium.ai/agent-run=<run>` and (when namespaced)
a controller owner reference, so deleting the run leaves nothing behind. The run's own
`spec.timeout` is the only watchdog. A Job this controller deleted is never mistaken
for a failure: terminal status is written before anything is deleted.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from agent.protocol import AgentResult, find_memory, find_rate_limit, find_result
from api.v1alpha1 import (
    API_VERSION,
    AgentRun,
    AgentRunPhase,
    SkillPack,
    SympoziumInstance,
    SympoziumPolicy,
)
from controller import (
    AlreadyExists,
    Client,
    EventRecorder,
    NotFound,
    Request,
    Result,
    add_finalizer,
    has_finalizer,
    remove_finalizer,
    set_controller_reference,
    set_status_condition,
)
from controller.conditions import rfc3339
from reconcilers import labels
from reconcilers.networkpolicy import EgressNeeds, build_network_policy, endpoint_of, model_endpoint
from reconcilers.podbuilder import (
    AGENT_CONTAINER,
    DEFAULT_AGENT_IMAGE,
    PodInputs,
    ResolvedSkill,
    build_job,
    input_config_map_name,
)
from reconcilers.telemetry import RunTelemetry, current_traceparent

log = logging.getLogger("sympozium.agentrun")

AGENT_RUN = (API_VERSION, "AgentRun")
INSTANCE = (API_VERSION, "SympoziumInstance")
POLICY = (API_VERSION, "SympoziumPolicy")
SKILL_PACK = (API_VERSION, "SkillPack")
JOB = ("batch/v1", "Job")
POD = ("v1", "Pod")
CONFIG_MAP = ("v1", "ConfigMap")
SERVICE_ACCOUNT = ("v1", "ServiceAccount")
NETWORK_POLICY = ("networking.k8s.io/v1", "NetworkPolicy")
ROLE = ("rbac.authorization.k8s.io/v1", "Role")
ROLE_BINDING = ("rbac.authorization.k8s.io/v1", "RoleBinding")
CLUSTER_ROLE = ("rbac.authorization.k8s.io/v1", "ClusterRole")
CLUSTER_ROLE_BINDING = ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")

TERMINAL = {AgentRunPhase.SUCCEEDED.value, AgentRunPhase.FAILED.value}
DEFAULT_TIMEOUT = 600.0
# Waiting reasons after which a container will never start on its own.
FATAL_WAITING = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}


@dataclass(frozen=True)
class AgentRunOptions:
    agent_image: str = DEFAULT_AGENT_IMAGE
    event_bus_url: str = ""
    max_run_history: int = 50
    system_namespace: str = labels.SYSTEM_NAMESPACE


class PolicyViolation(Exception):
    """The run may not start; it ends Failed with this reason, once."""


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    result: str = ""
    error: str = ""
    exit_code: int | None = None
    usage: AgentResult | None = None
    memory: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_duration(seconds: float) -> str:
    """Go's spelling of a duration (`10m0s`), the form users wrote in `spec.timeout`."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{seconds:g}s"


def effective_tool_policy(run: AgentRun, policy: SympoziumPolicy | None) -> dict[str, list[str]]:
    """The run's allow/deny lists narrowed by the policy's tool gating.

    `ask` rules deny for now: there is no approval flow yet, and a tool that needs
    approval must not run unapproved.
    """
    own = run.spec.tool_policy
    allow = list(own.allow or []) if own else []
    deny = list(own.deny or []) if own else []
    gating = policy.spec.tool_gating if policy and policy.spec else None
    if gating is not None:
        rules = gating.rules or []
        deny += [rule.tool for rule in rules if rule.action in ("deny", "ask")]
        if gating.default_action == "deny":
            allowed = [rule.tool for rule in rules if rule.action == "allow"]
            if allow:
                allow = [t for t in allow if any(fnmatch.fnmatchcase(t, g) for g in allowed)]
                allow = allow or ["<none>"]  # both lists set, nothing in common: no tool at all
            else:
                allow = allowed or ["<none>"]
    result: dict[str, list[str]] = {}
    if allow:
        result["allow"] = sorted(set(allow))
    if deny:
        result["deny"] = sorted(set(deny))
    return result


class AgentRunReconciler:
    def __init__(
        self,
        client: Client,
        recorder: EventRecorder,
        telemetry: RunTelemetry,
        options: AgentRunOptions | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.telemetry = telemetry
        self.options = options or AgentRunOptions()
        self.clock = clock

    async def reconcile(self, request: Request) -> Result | None:
        try:
            obj = await self.client.get(AGENT_RUN, request.name, request.namespace)
        except NotFound:
            return None
        annotations = obj.get("metadata", {}).get("annotations") or {}
        with self.telemetry.span("agentrun.reconcile", annotations.get(labels.TRACEPARENT)):
            return await self._reconcile(obj)

    async def _reconcile(self, obj: dict[str, Any]) -> Result | None:
        meta = obj["metadata"]
        phase = (obj.get("status") or {}).get("phase") or ""
        if meta.get("deletionTimestamp"):
            await self._delete(obj)
            return None
        if phase in TERMINAL:
            await self._finished(obj)
            return None
        try:
            run = AgentRun.from_obj(obj)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            await self._fail(obj, f"invalid spec: {where}: {first['msg']}", reason="InvalidSpec")
            return None
        obj = await self._adopt(obj, run)
        if phase in ("", AgentRunPhase.PENDING.value):
            return await self._start(obj, run)
        if phase == AgentRunPhase.RUNNING.value:
            return await self._follow(obj, run)
        return None

    # ---- first sight

    async def _adopt(self, obj: dict[str, Any], run: AgentRun) -> dict[str, Any]:
        """Finalizer, the instance label (pruning counts by it) and the trace root, once."""
        meta = obj["metadata"]
        want_labels = {labels.INSTANCE: run.spec.instance_ref}
        missing_label = (meta.get("labels") or {}).get(labels.INSTANCE) != run.spec.instance_ref
        traceparent = (meta.get("annotations") or {}).get(labels.TRACEPARENT)
        patch_meta: dict[str, Any] = {}
        if missing_label:
            patch_meta["labels"] = want_labels
        if not traceparent:
            current, _ = current_traceparent()
            if current:
                patch_meta["annotations"] = {labels.TRACEPARENT: current}
        if patch_meta:
            obj = await self.client.patch(
                AGENT_RUN,
                meta["name"],
                {"metadata": {**patch_meta, "resourceVersion": meta["resourceVersion"]}},
                namespace=meta["namespace"],
                patch_type="merge",
            )
        if not has_finalizer(obj, labels.AGENT_RUN_FINALIZER):
            obj = await add_finalizer(self.client, obj, labels.AGENT_RUN_FINALIZER)
        return obj

    # ---- Pending

    async def _start(self, obj: dict[str, Any], run: AgentRun) -> Result | None:
        if run.spec.mode == "server":
            await self._fail(
                obj,
                "spec.mode server is not supported by this controller yet; use mode task",
                reason="Unsupported",
            )
            return None
        namespace = obj["metadata"]["namespace"]
        try:
            instance, policy = await self._check_policy(run, namespace)
        except PolicyViolation as violation:
            await self._fail(obj, f"policy validation failed: {violation}", reason="PolicyDenied")
            return None
        timeout = run.spec.timeout_seconds(DEFAULT_TIMEOUT)
        skills, skill_config_maps, documents = await self._resolve_skills(run, instance, namespace)
        traceparent, trace_id = current_traceparent()
        traceparent = (obj["metadata"].get("annotations") or {}).get(
            labels.TRACEPARENT
        ) or traceparent
        memory = instance.spec.memory
        inputs = PodInputs(
            instance=run.spec.instance_ref,
            service_account=obj["metadata"]["name"],
            agent_image=self.options.agent_image,
            event_bus_url=self.options.event_bus_url,
            skills=tuple(s for s in skills if not s.sidecar.requires_server),
            skill_config_maps=tuple(skill_config_maps),
            memory_enabled=bool(memory is not None and memory.enabled),
            tool_policy=effective_tool_policy(run, policy),
            timeout_seconds=timeout,
            traceparent=traceparent,
            observability_env=tuple(_observability_env(instance, run)),
            sandbox_required=bool(
                policy and policy.spec.sandbox_policy and policy.spec.sandbox_policy.required
            ),
        )
        await self._create_run_objects(obj, run, inputs, policy, documents)
        job = build_job(run, inputs)
        set_controller_reference(obj, job)
        with contextlib.suppress(AlreadyExists):
            await self.client.create(job)
        status = obj.setdefault("status", {})
        status.update(
            phase=AgentRunPhase.RUNNING.value,
            jobName=job["metadata"]["name"],
            startedAt=rfc3339(self.clock()),
        )
        if trace_id:
            status["traceID"] = trace_id
        set_status_condition(
            obj, "Started", True, "JobCreated", f"Job {job['metadata']['name']} created"
        )
        await self.client.update_status(obj)
        self.recorder.event(obj, "Normal", "Started", f"Created Job {job['metadata']['name']}")
        return Result(requeue_after=timeout)

    async def _check_policy(
        self, run: AgentRun, namespace: str
    ) -> tuple[SympoziumInstance, SympoziumPolicy | None]:
        try:
            instance = SympoziumInstance.from_obj(
                await self.client.get(INSTANCE, run.spec.instance_ref, namespace)
            )
        except NotFound:
            raise PolicyViolation(
                f'SympoziumInstance "{run.spec.instance_ref}" not found in namespace {namespace}'
            ) from None
        policy: SympoziumPolicy | None = None
        if instance.spec.policy_ref:
            try:
                policy = SympoziumPolicy.from_obj(
                    await self.client.get(POLICY, instance.spec.policy_ref, namespace)
                )
            except NotFound:
                raise PolicyViolation(
                    f'SympoziumPolicy "{instance.spec.policy_ref}" not found in namespace {namespace}'
                ) from None
        if policy is None:
            return instance, None
        spec = policy.spec
        gates = spec.feature_gates or {}
        if run.spec.parent is not None and gates.get("sub-agents") is False:
            raise PolicyViolation("feature gate 'sub-agents' is disabled by policy")
        sandbox_on = run.spec.sandbox is not None and run.spec.sandbox.enabled
        if sandbox_on and gates.get("code-execution") is False:
            raise PolicyViolation("feature gate 'code-execution' is disabled by policy")
        limits = spec.subagent_policy
        if limits is not None:
            depth = run.spec.parent.spawn_depth if run.spec.parent is not None else 0
            if limits.max_depth is not None and depth > limits.max_depth:
                raise PolicyViolation(f"sub-agent depth {depth} exceeds max {limits.max_depth}")
            if limits.max_concurrent is not None:
                running = await self._running_runs(namespace, run.spec.instance_ref)
                if running >= limits.max_concurrent:
                    raise PolicyViolation(
                        f"concurrency limit reached: {running}/{limits.max_concurrent}"
                    )
        return instance, policy

    async def _running_runs(self, namespace: str, instance: str) -> int:
        found = await self.client.list(
            AGENT_RUN, namespace=namespace, label_selector=f"{labels.INSTANCE}={instance}"
        )
        return sum(
            1
            for item in found.items
            if (item.get("status") or {}).get("phase") == AgentRunPhase.RUNNING.value
        )

    async def _resolve_skills(
        self, run: AgentRun, instance: SympoziumInstance, namespace: str
    ) -> tuple[list[ResolvedSkill], list[str], dict[str, str]]:
        """Sidecars of the referenced packs, and the ConfigMaps that fill `/skills`.

        Pack documents are copied into the run's own `<run>-skills` ConfigMap, so the
        agent sees them whether the pack lives here or in sympozium-system, and whether
        or not a SkillPack reconciler has published them yet.
        """
        refs = list(run.spec.skills or [])
        source = (run.metadata.labels or {}).get(labels.SOURCE)
        if not refs and source != "web-proxy":
            refs = list(instance.spec.skills or [])
        resolved: list[ResolvedSkill] = []
        config_maps: list[str] = []
        documents: dict[str, str] = {}
        for ref in refs:
            if ref.config_map_ref:
                config_maps.append(ref.config_map_ref)
            if not ref.skill_pack_ref:
                continue
            name = ref.skill_pack_ref.removeprefix("skillpack-")
            pack = await self._find_skill_pack(name, namespace)
            if pack is None:
                self.recorder.event(
                    run.to_obj(), "Warning", "SkillPackMissing", f'SkillPack "{name}" not found'
                )
                continue
            for skill in pack.spec.skills:
                body = skill.content
                if skill.description:
                    body = f"# {skill.name}\n\n> {skill.description}\n\n{skill.content}"
                documents[f"{name}-{skill.name}.md"] = body
            sidecar = pack.spec.sidecar
            if sidecar is not None and sidecar.image:
                resolved.append(ResolvedSkill(name, sidecar, dict(ref.params or {})))
        if documents:
            config_maps.insert(0, f"{run.metadata.name}-skills")
        return resolved, config_maps, documents

    async def _find_skill_pack(self, name: str, namespace: str) -> SkillPack | None:
        for where in dict.fromkeys((namespace, self.options.system_namespace)):
            with contextlib.suppress(NotFound):
                return SkillPack.from_obj(await self.client.get(SKILL_PACK, name, where))
        return None

    async def _create_run_objects(
        self,
        obj: dict[str, Any],
        run: AgentRun,
        inputs: PodInputs,
        policy: SympoziumPolicy | None,
        skill_documents: dict[str, str],
    ) -> None:
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        run_labels = labels.run_labels(name, inputs.instance)
        await self._create_owned(
            obj,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace, "labels": run_labels},
                "automountServiceAccountToken": False,
            },
        )
        await self._create_owned(
            obj,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": input_config_map_name(name),
                    "namespace": namespace,
                    "labels": run_labels,
                },
                "data": {
                    "task": run.spec.task_text,
                    "system-prompt": run.spec.system_prompt or "",
                    "agent-id": run.spec.agent_id,
                    "session-key": run.spec.session_key or "",
                },
            },
        )
        if skill_documents:
            await self._create_owned(
                obj,
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": f"{name}-skills",
                        "namespace": namespace,
                        "labels": {**run_labels, labels.COMPONENT: "skillpack-mirror"},
                    },
                    "data": dict(sorted(skill_documents.items())),
                },
            )
        for skill in inputs.skills:
            await self._create_skill_rbac(obj, skill, run_labels)
        await self._create_owned(
            obj,
            build_network_policy(
                name, namespace, inputs.instance, self._egress(run, inputs, policy)
            ),
        )

    def _egress(
        self, run: AgentRun, inputs: PodInputs, policy: SympoziumPolicy | None
    ) -> EgressNeeds:
        network = policy.spec.network_policy if policy is not None else None
        extra = []
        for allowed in (network.allowed_egress or []) if network else []:
            extra.append(endpoint_of(f"{allowed.host}:{allowed.port or 443}"))
        return EgressNeeds(
            model=model_endpoint(run.spec.model.provider, run.spec.model.base_url),
            event_bus=endpoint_of(inputs.event_bus_url)
            if inputs.event_bus_url and (network is None or network.allow_event_bus)
            else None,
            memory_server=inputs.memory_enabled,
            api_server=any(s.sidecar.rbac or s.sidecar.cluster_rbac for s in inputs.skills),
            extra=tuple(e for e in extra if e is not None),
            allow_dns=network is None or network.allow_dns,
            deny_all=network is None or network.deny_all,
        )

    async def _create_skill_rbac(
        self, obj: dict[str, Any], skill: ResolvedSkill, run_labels: dict[str, str]
    ) -> None:
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        rbac_name = f"sympozium-skill-{skill.pack}-{name}"
        rbac_labels = {
            **run_labels,
            labels.SKILL: skill.pack,
            labels.MANAGED_BY: "sympozium",
        }
        subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
        for rules, role_kind, binding_kind in (
            (skill.sidecar.rbac, "Role", "RoleBinding"),
            (skill.sidecar.cluster_rbac, "ClusterRole", "ClusterRoleBinding"),
        ):
            if not rules:
                continue
            cluster = role_kind == "ClusterRole"
            meta = {"name": rbac_name, "labels": rbac_labels}
            if not cluster:
                meta["namespace"] = namespace
            role = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": role_kind,
                "metadata": dict(meta),
                "rules": [rule.model_dump(by_alias=True, exclude_none=True) for rule in rules],
            }
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": binding_kind,
                "metadata": dict(meta),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": role_kind,
                    "name": rbac_name,
                },
                "subjects": [subject],
            }
            for item in (role, binding):
                if cluster:  # a namespaced run cannot own cluster objects: removed by label
                    with contextlib.suppress(AlreadyExists):
                        await self.client.create(item)
                else:
                    await self._create_owned(obj, item)

    async def _create_owned(self, owner: dict[str, Any], child: dict[str, Any]) -> None:
        set_controller_reference(owner, child)
        with contextlib.suppress(AlreadyExists):
            await self.client.create(child)

    # ---- Running

    async def _follow(self, obj: dict[str, Any], run: AgentRun) -> Result | None:
        meta, status = obj["metadata"], obj.get("status") or {}
        namespace = meta["namespace"]
        job_name = status.get("jobName") or meta["name"]
        try:
            job = await self.client.get(JOB, job_name, namespace)
        except NotFound:
            await self._fail(obj, f"Job {job_name} was deleted before the run finished")
            return None
        pod = await self._run_pod(namespace, meta["name"])
        new_pod = pod is not None and status.get("podName") != pod["metadata"]["name"]
        if pod is not None and new_pod:
            obj.setdefault("status", {})["podName"] = pod["metadata"]["name"]
        outcome = await self._outcome(job, pod)
        if outcome is not None:
            await self._complete(obj, run, outcome)
            return None
        if new_pod:
            obj = await self.client.update_status(obj)  # `kubectl get ar` shows the pod now
            status = obj.get("status") or {}
        timeout = run.spec.timeout_seconds(DEFAULT_TIMEOUT)
        started = _parse_time(status.get("startedAt")) or self.clock()
        remaining = timeout - (self.clock() - started).total_seconds()
        if remaining <= 0:
            await self._complete(
                obj,
                run,
                Outcome(False, error=f"timed out after {format_duration(timeout)} (spec.timeout)"),
                reason="Timeout",
            )
            return None
        return Result(requeue_after=remaining)

    async def _run_pod(self, namespace: str, run_name: str) -> dict[str, Any] | None:
        found = await self.client.list(
            POD, namespace=namespace, label_selector=f"{labels.AGENT_RUN}={run_name}"
        )
        pods = sorted(found.items, key=lambda p: p["metadata"].get("creationTimestamp") or "")
        return pods[-1] if pods else None

    async def _outcome(self, job: dict[str, Any], pod: dict[str, Any] | None) -> Outcome | None:
        """What the run came to, once the agent container has ended (None: still going).

        The agent container decides, not the Job: sidecars may still be shutting down.
        """
        agent = _container_status(pod, AGENT_CONTAINER)
        state = (agent or {}).get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            return Outcome(
                False,
                error=f"agent container cannot start: {waiting['reason']}: {waiting.get('message', '')}".strip(),
            )
        terminated = state.get("terminated")
        if terminated is not None and pod is not None:
            code = int(terminated.get("exitCode", 1))
            log_text = await self._agent_log(pod)
            return _outcome_from_log(log_text, code, terminated.get("reason") or "")
        job_status = job.get("status") or {}
        for condition in job_status.get("conditions") or []:
            if condition.get("type") == "Failed" and condition.get("status") == "True":
                reason = condition.get("reason") or "Failed"
                return Outcome(False, error=f"Job failed: {reason}: {condition.get('message', '')}")
        return None

    async def _agent_log(self, pod: dict[str, Any]) -> str:
        meta = pod["metadata"]
        try:
            return await self.client.read_text(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/log",
                params={"container": AGENT_CONTAINER, "tailLines": "200"},
            )
        except NotFound:
            return ""

    # ---- the end of a run

    async def _complete(
        self, obj: dict[str, Any], run: AgentRun, outcome: Outcome, reason: str = ""
    ) -> None:
        status = obj.setdefault("status", {})
        now = self.clock()
        status["completedAt"] = rfc3339(now)
        if outcome.exit_code is not None:
            status["exitCode"] = outcome.exit_code
        usage = outcome.usage
        if usage is not None:
            metrics = usage.metrics
            status["tokenUsage"] = {
                "inputTokens": metrics.input_tokens,
                "outputTokens": metrics.output_tokens,
                "totalTokens": metrics.input_tokens + metrics.output_tokens,
                "toolCalls": metrics.tool_calls,
                "durationMs": metrics.duration_ms,
            }
        started = _parse_time(status.get("startedAt"))
        # The agent's own measure of its loop; else the run's wall time.
        duration = usage.metrics.duration_ms if usage is not None else 0
        if not duration and started is not None:
            duration = int((now - started).total_seconds() * 1000)
        if outcome.succeeded:
            status.update(phase=AgentRunPhase.SUCCEEDED.value, result=outcome.result)
            status.pop("error", None)
            set_status_condition(obj, "Complete", True, "Succeeded", "the agent finished")
            await self.client.update_status(obj)
            self.recorder.event(obj, "Normal", "Succeeded", "Agent run succeeded")
            if outcome.memory:
                await self._write_memory(obj, run.spec.instance_ref, outcome.memory)
        else:
            await self._write_failure(obj, outcome.error, reason or "AgentFailed")
        self.telemetry.finished(run.spec.instance_ref, outcome.succeeded, duration)
        if run.spec.cleanup != "keep":
            await self._delete_quietly(JOB, status.get("jobName") or obj["metadata"]["name"], obj)

    async def _fail(self, obj: dict[str, Any], error: str, reason: str = "Failed") -> None:
        """Failed before a Job existed: no Job to judge, no pod to read."""
        obj.setdefault("status", {})["completedAt"] = rfc3339(self.clock())
        await self._write_failure(obj, error, reason)
        instance = (obj.get("spec") or {}).get("instanceRef") or ""
        self.telemetry.finished(instance, False, None)

    async def _write_failure(self, obj: dict[str, Any], error: str, reason: str) -> None:
        status = obj.setdefault("status", {})
        status.update(phase=AgentRunPhase.FAILED.value, error=error)
        set_status_condition(obj, "Failed", True, reason, error[:1024])
        await self.client.update_status(obj)
        self.recorder.event(obj, "Warning", reason, error[:1024])
        log.info("agent run failed run=%s/%s reason=%s", *_key(obj), reason)

    async def _write_memory(self, obj: dict[str, Any], instance: str, memory: str) -> None:
        namespace = obj["metadata"]["namespace"]
        with contextlib.suppress(NotFound):
            await self.client.patch(
                CONFIG_MAP,
                f"{instance}-memory",
                {"data": {"MEMORY.md": memory}},
                namespace=namespace,
                patch_type="merge",
            )

    async def _finished(self, obj: dict[str, Any]) -> None:
        """Once per finished run: short-lived RBAC removed, history pruned, finalizer off."""
        if not has_finalizer(obj, labels.AGENT_RUN_FINALIZER):
            return
        await self._delete_cluster_rbac(obj)
        await self._delete_labelled(obj, ROLE_BINDING)
        await self._delete_labelled(obj, ROLE)
        if (obj.get("spec") or {}).get("cleanup", "delete") != "keep":
            await self._delete_labelled(obj, NETWORK_POLICY)
        await remove_finalizer(self.client, obj, labels.AGENT_RUN_FINALIZER)
        instance = (obj["metadata"].get("labels") or {}).get(labels.INSTANCE)
        if instance:
            await self._prune(obj["metadata"]["namespace"], instance)

    async def _prune(self, namespace: str, instance: str) -> None:
        """At most `max_run_history` finished runs per instance: the oldest go first."""
        found = await self.client.list(
            AGENT_RUN, namespace=namespace, label_selector=f"{labels.INSTANCE}={instance}"
        )
        finished = [
            item
            for item in found.items
            if (item.get("status") or {}).get("phase") in TERMINAL
            and not item["metadata"].get("deletionTimestamp")
        ]
        surplus = len(finished) - self.options.max_run_history
        if surplus <= 0:
            return
        finished.sort(
            key=lambda item: (
                item["metadata"].get("creationTimestamp") or "",
                item["metadata"]["name"],
            )
        )
        for item in finished[:surplus]:
            with contextlib.suppress(NotFound):
                await self.client.delete(AGENT_RUN, item["metadata"]["name"], namespace=namespace)

    async def _delete(self, obj: dict[str, Any]) -> None:
        """Deleted mid-run: stop the pod now rather than waiting for the garbage collector."""
        if not has_finalizer(obj, labels.AGENT_RUN_FINALIZER):
            return
        await self._delete_cluster_rbac(obj)
        status = obj.get("status") or {}
        await self._delete_quietly(JOB, status.get("jobName") or obj["metadata"]["name"], obj)
        await remove_finalizer(self.client, obj, labels.AGENT_RUN_FINALIZER)

    async def _delete_cluster_rbac(self, obj: dict[str, Any]) -> None:
        for kind in (CLUSTER_ROLE_BINDING, CLUSTER_ROLE):
            found = await self.client.list(
                kind,
                label_selector=f"{labels.AGENT_RUN}={obj['metadata']['name']},"
                f"{labels.MANAGED_BY}=sympozium",
            )
            for item in found.items:
                with contextlib.suppress(NotFound):
                    await self.client.delete(kind, item["metadata"]["name"])

    async def _delete_labelled(self, obj: dict[str, Any], kind: tuple[str, str]) -> None:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        found = await self.client.list(
            kind, namespace=namespace, label_selector=f"{labels.AGENT_RUN}={name}"
        )
        for item in found.items:
            with contextlib.suppress(NotFound):
                await self.client.delete(kind, item["metadata"]["name"], namespace=namespace)

    async def _delete_quietly(
        self, kind: tuple[str, str], name: str, owner: dict[str, Any]
    ) -> None:
        with contextlib.suppress(NotFound):
            await self.client.delete(
                kind,
                name,
                namespace=owner["metadata"]["namespace"],
                propagation_policy="Background",
            )


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"].get("name", "")


def _container_status(pod: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            found: dict[str, Any] = status
            return found
    return None


def _outcome_from_log(log_text: str, exit_code: int, reason: str) -> Outcome:
    """reconcilers.md §1.6: the result block decides; else a 429 line; else the exit code."""
    result = find_result(log_text)
    memory = find_memory(log_text)
    if exit_code == 0 and (result is None or result.status == "success"):
        usage = result if result is not None and _has_tokens(result) else None
        return Outcome(
            True,
            result=(result.response or "") if result else "",
            exit_code=0,
            usage=usage,
            memory=memory,
        )
    if result is not None and result.status == "error":
        error = (result.error or "").strip() or "agent run failed"
    else:
        error = find_rate_limit(log_text) or (
            f"agent container exited with code {exit_code}" + (f" ({reason})" if reason else "")
        )
    return Outcome(False, error=error, exit_code=exit_code)


def _has_tokens(result: AgentResult) -> bool:
    return result.metrics.input_tokens > 0 or result.metrics.output_tokens > 0


def _observability_env(instance: SympoziumInstance, run: AgentRun) -> list[tuple[str, str]]:
    """OTel settings for the pod when the instance turns observability on (reconcilers.md §4)."""
    spec = instance.spec.observability
    if spec is None or not spec.enabled:
        return []
    env = [("SYMPOZIUM_OTEL_ENABLED", "true")]
    for suffix, value in (
        ("OTLP_ENDPOINT", spec.otlp_endpoint),
        ("OTLP_PROTOCOL", spec.otlp_protocol),
        ("SERVICE_NAME", spec.service_name),
    ):
        if value:
            env.append((f"SYMPOZIUM_OTEL_{suffix}", value))
            standard = (
                "OTEL_SERVICE_NAME" if suffix == "SERVICE_NAME" else f"OTEL_EXPORTER_{suffix}"
            )
            env.append((standard, value))
    attributes = {
        "sympozium.instance.name": run.spec.instance_ref,
        "sympozium.agent_run.id": run.metadata.name or "",
        "k8s.namespace.name": run.metadata.namespace or "",
        **(spec.resource_attributes or {}),
    }
    joined = ",".join(f"{k}={v}" for k, v in sorted(attributes.items()))
    env += [("SYMPOZIUM_OTEL_RESOURCE_ATTRIBUTES", joined), ("OTEL_RESOURCE_ATTRIBUTES", joined)]
    return env
