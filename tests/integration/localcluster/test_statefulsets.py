"""StatefulSets are served (stored, defaulted, validated, scaled), as kubectl expects."""

from __future__ import annotations

import json

from tests.integration.conftest import Kubectl

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres:16-alpine}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def test_statefulset_defaults_scale_and_fixed_fields(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=STS)
    sts = json.loads(kubectl("get", "sts", "db", "-n", namespace, "-o", "json").stdout)
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    kubectl("scale", "sts", "db", "-n", namespace, "--replicas=3")
    replicas = kubectl("get", "sts", "db", "-n", namespace, "-o", "jsonpath={.spec.replicas}")
    assert replicas.stdout == "3"
    changed = kubectl(
        "patch",
        "sts",
        "db",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"serviceName":"other"}}',
        check=False,
    )
    assert changed.returncode != 0
    assert "updates to statefulset spec for fields other than" in changed.stderr
    missing = kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=STS.replace("name: db}", "name: bad}").replace(
            "  selector: {matchLabels: {app: db}}\n", ""
        ),
        check=False,
    )
    assert missing.returncode != 0 and "spec.selector" in missing.stderr
