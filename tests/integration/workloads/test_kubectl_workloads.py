"""The issue's user flows, typed as a user would: kubectl against the local cluster."""

from __future__ import annotations

import json
import time

from tests.integration.conftest import Kubectl

IMAGE = "ghcr.io/sympozium-ai/sympozium:latest"


def wait_for(kubectl: Kubectl, check: str, *args: str, within: float = 60.0) -> str:
    """Polls `kubectl get ... -o jsonpath` until its output contains `check`."""
    out = ""
    for _ in range(int(within / 0.2)):
        result = kubectl("get", *args, check=False)
        out = result.stdout + result.stderr  # "No resources found" goes to stderr
        if check in out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"never saw {check!r}; last output: {out!r}")


def test_a_job_runs_to_completion_and_its_logs_are_readable(
    kubectl: Kubectl, namespace: str
) -> None:
    n = ("-n", namespace)
    kubectl(
        "create",
        "job",
        "hello",
        f"--image={IMAGE}",
        *n,
        "--",
        "python",
        "-c",
        "print('hello from the node')",
    )
    kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=60s", *n)
    assert "hello from the node" in kubectl("logs", "job/hello", *n).stdout
    # Deleting the Job deletes its pods (background propagation through the GC).
    kubectl("delete", "job", "hello", *n)
    wait_for(kubectl, "No resources", "pods", "-l", "job-name=hello", *n)


def test_failing_and_overdue_jobs_fail_with_their_reasons(kubectl: Kubectl, namespace: str) -> None:
    n = ("-n", namespace)
    manifest = f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: failing, namespace: {namespace}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: "{IMAGE}", command: [python, -c, "raise SystemExit(3)"]}}]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: overdue, namespace: {namespace}}}
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: "{IMAGE}", command: [python, -c, "import time; time.sleep(600)"]}}]
"""
    kubectl("apply", "-f", "-", stdin=manifest)
    kubectl("wait", "--for=condition=failed", "job/failing", "job/overdue", "--timeout=60s", *n)
    failing = json.loads(kubectl("get", "job", "failing", "-o", "json", *n).stdout)
    overdue = json.loads(kubectl("get", "job", "overdue", "-o", "json", *n).stdout)
    reason = {c["type"]: c.get("reason") for c in failing["status"]["conditions"]}
    assert reason["Failed"] == "BackoffLimitExceeded"
    reason = {c["type"]: c.get("reason") for c in overdue["status"]["conditions"]}
    assert reason["Failed"] == "DeadlineExceeded"
    pod = json.loads(kubectl("get", "pods", "-l", "job-name=failing", "-o", "json", *n).stdout)[
        "items"
    ][0]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    # The overdue Job's pod is stopped, not left running.
    wait_for(
        kubectl,
        "No resources",
        "pods",
        "-l",
        "job-name=overdue",
        "--field-selector=status.phase=Running",
        *n,
    )


def test_a_deployment_keeps_two_replicas_and_namespace_deletion_empties_it(
    kubectl: Kubectl,
) -> None:
    namespace = f"kw-{int(time.time() * 1000) % 10**8}"
    n = ("-n", namespace)
    kubectl("create", "namespace", namespace)
    kubectl(
        "create",
        "deployment",
        "web",
        f"--image={IMAGE}",
        "--replicas=2",
        *n,
        "--",
        "python",
        "-c",
        "import time; time.sleep(600)",
    )
    kubectl("wait", "--for=condition=available", "deployment/web", "--timeout=60s", *n)
    pods = kubectl("get", "pods", "-l", "app=web", "-o", "name", *n).stdout.split()
    assert len(pods) == 2
    kubectl("delete", pods[0], *n)
    wait_for(kubectl, "2", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}", *n)
    after = kubectl("get", "pods", "-l", "app=web", "-o", "name", *n).stdout.split()
    assert len(after) == 2 and pods[0] not in after
    kubectl("create", "configmap", "leftover", *n)
    kubectl("delete", "namespace", namespace, "--timeout=60s")
    result = kubectl("get", "namespace", namespace, check=False)
    assert result.returncode != 0 and "NotFound" in result.stderr
