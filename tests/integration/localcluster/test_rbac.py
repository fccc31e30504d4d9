"""RBAC as a user meets it: a service account's token can do what its Role grants, no more."""

from __future__ import annotations

import json
import time

from tests.integration.conftest import Kubectl, RunningCluster


def test_a_service_account_can_do_exactly_what_its_role_binding_grants(
    kubectl: Kubectl, namespace: str
) -> None:
    n = ("-n", namespace)
    kubectl("create", "serviceaccount", "bot", *n)
    token = kubectl("create", "token", "bot", *n).stdout.strip()
    as_bot = (f"--token={token}", *n)

    denied = kubectl("get", "configmaps", *as_bot, check=False)
    assert denied.returncode != 0
    assert (
        f'configmaps is forbidden: User "system:serviceaccount:{namespace}:bot" cannot list '
        f'resource "configmaps" in API group "" in the namespace "{namespace}"'
    ) in denied.stderr
    assert (
        kubectl("auth", "can-i", "list", "configmaps", *as_bot, check=False).stdout.strip() == "no"
    )

    kubectl("create", "role", "reader", "--verb=get,list", "--resource=configmaps", *n)
    kubectl(
        "create",
        "rolebinding",
        "bot-reads",
        "--role=reader",
        f"--serviceaccount={namespace}:bot",
        *n,
    )
    assert kubectl("get", "configmaps", *as_bot).returncode == 0
    assert kubectl("auth", "can-i", "list", "configmaps", *as_bot).stdout.strip() == "yes"
    assert (
        kubectl("auth", "can-i", "create", "configmaps", *as_bot, check=False).stdout.strip()
        == "no"
    )
    created = kubectl("create", "configmap", "nope", *as_bot, check=False)
    assert created.returncode != 0 and "cannot create resource" in created.stderr
    other = kubectl("get", "configmaps", f"--token={token}", "-n", "default", check=False)
    assert other.returncode != 0 and 'in the namespace "default"' in other.stderr

    kubectl("delete", "rolebinding", "bot-reads", *n)
    assert kubectl("get", "configmaps", *as_bot, check=False).returncode != 0
    # The admin (system:masters) may do anything.
    assert kubectl("auth", "can-i", "create", "pods", *n).stdout.strip() == "yes"


POD_SCRIPT = """
import json, os, ssl, sys, urllib.error, urllib.request
base = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(os.path.join(base, "token")).read().strip()
context = ssl.create_default_context(cafile=os.path.join(base, "ca.crt"))
server = "https://" + os.environ["KUBERNETES_SERVICE_HOST"] + ":" + os.environ["KUBERNETES_SERVICE_PORT"]
results = {}
for verb, path in [("GET", "/api/v1/namespaces/NS/configmaps"), ("GET", "/api/v1/namespaces/NS/secrets")]:
    request = urllib.request.Request(server + path, method=verb, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            results[path.rsplit("/", 1)[1]] = response.status
    except urllib.error.HTTPError as error:
        results[path.rsplit("/", 1)[1]] = error.code
print("RESULT " + json.dumps(results, sort_keys=True))
"""


def test_a_pods_mounted_token_is_limited_to_its_role(
    kubectl: Kubectl, namespace: str, cluster: RunningCluster
) -> None:
    n = ("-n", namespace)
    ca = cluster.ca_file.read_text()
    kubectl("create", "serviceaccount", "worker", *n)
    kubectl("create", "configmap", "api-ca", f"--from-literal=ca.crt={ca}", *n)
    kubectl("create", "role", "cm-reader", "--verb=list", "--resource=configmaps", *n)
    kubectl(
        "create",
        "rolebinding",
        "worker-reads",
        "--role=cm-reader",
        f"--serviceaccount={namespace}:worker",
        *n,
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "serviceAccountName": "worker",
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": "ghcr.io/sympozium-ai/sympozium:latest",
                    "command": ["python", "-c", POD_SCRIPT.replace("NS", namespace)],
                    "volumeMounts": [
                        {
                            "name": "api",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        }
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "api",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                            {
                                "configMap": {
                                    "name": "api-ca",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                        ]
                    },
                }
            ],
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    for _ in range(300):
        phase = kubectl("get", "pod", "probe", "-o", "jsonpath={.status.phase}", *n).stdout
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.2)
    logs = kubectl("logs", "probe", *n).stdout
    assert phase == "Succeeded", logs
    result = json.loads(logs.split("RESULT ", 1)[1])
    # The Role grants listing configmaps and nothing else.
    assert result == {"configmaps": 200, "secrets": 403}
