"""RBAC as a user meets it: a service account's token can do what its Role grants, no more."""

from __future__ import annotations

from tests.integration.conftest import Kubectl


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
