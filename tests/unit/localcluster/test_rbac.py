"""The RBAC authoriser: bindings, rule matching, defaults, messages, SSAR, request mapping."""

from __future__ import annotations

from typing import Any

import pytest

from localcluster.errors import StatusError
from localcluster.rbac import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    ROLE_BINDINGS,
    ROLES,
    Attributes,
    Authorizer,
    forbidden_error,
    forbidden_message,
    request_attributes,
    rule_allows,
    self_subject_access_review,
)

Obj = dict[str, Any]

SA = "system:serviceaccount:ns:sa"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")


def meta(name: str, namespace: str = "") -> Obj:
    m: Obj = {"name": name}
    if namespace:
        m["namespace"] = namespace
    return m


def role(name: str, namespace: str, *rules: Obj) -> Obj:
    return {"kind": "Role", "metadata": meta(name, namespace), "rules": list(rules)}


def cluster_role(name: str, *rules: Obj) -> Obj:
    return {"kind": "ClusterRole", "metadata": meta(name), "rules": list(rules)}


def ref(kind: str, name: str) -> Obj:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def role_binding(name: str, namespace: str, role_ref: Obj, *subjects: Any) -> Obj:
    return {
        "kind": "RoleBinding",
        "metadata": meta(name, namespace),
        "roleRef": role_ref,
        "subjects": list(subjects),
    }


def cluster_role_binding(name: str, role_ref: Obj, *subjects: Obj) -> Obj:
    return {
        "kind": "ClusterRoleBinding",
        "metadata": meta(name),
        "roleRef": role_ref,
        "subjects": list(subjects),
    }


def sa_subject(name: str = "sa", namespace: str | None = "ns") -> Obj:
    subject: Obj = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        subject["namespace"] = namespace
    return subject


def user_subject(name: str) -> Obj:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def group_subject(name: str) -> Obj:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def rule(
    verbs: list[str],
    resources: list[str],
    groups: list[str] | None = None,
    names: list[str] | None = None,
) -> Obj:
    r: Obj = {"verbs": verbs, "apiGroups": [""] if groups is None else groups}
    r["resources"] = resources
    if names is not None:
        r["resourceNames"] = names
    return r


class Objects:
    """In-memory buckets standing in for ``store.items``."""

    def __init__(self) -> None:
        self.buckets: dict[str, list[Obj]] = {}
        self.reads: list[str] = []

    def add(self, *objects: Obj) -> Objects:
        bucket = {
            "Role": ROLES,
            "RoleBinding": ROLE_BINDINGS,
            "ClusterRole": CLUSTER_ROLES,
            "ClusterRoleBinding": CLUSTER_ROLE_BINDINGS,
        }
        for obj in objects:
            self.buckets.setdefault(bucket[obj["kind"]], []).append(obj)
        return self

    def __call__(self, bucket: str) -> list[Obj]:
        self.reads.append(bucket)
        return list(self.buckets.get(bucket, []))


def can(
    objects: Objects,
    verb: str,
    resource: str,
    namespace: str = "",
    *,
    group: str = "",
    sub: str = "",
    name: str = "",
    user: str = SA,
    groups: tuple[str, ...] = SA_GROUPS,
) -> bool:
    attrs = Attributes(
        user=user,
        groups=groups,
        verb=verb,
        namespace=namespace,
        api_group=group,
        resource=resource,
        subresource=sub,
        name=name,
    )
    return Authorizer(objects).authorize(attrs)[0]


def can_path(objects: Objects, verb: str, path: str, **kw: Any) -> bool:
    attrs = Attributes(
        user=kw.get("user", SA),
        groups=kw.get("groups", SA_GROUPS),
        verb=verb,
        path=path,
        resource_request=False,
    )
    return Authorizer(objects).authorize(attrs)[0]


def sa_role(*rules: Obj, namespace: str = "ns") -> Objects:
    return Objects().add(
        role("r", namespace, *rules),
        role_binding("rb", namespace, ref("Role", "r"), sa_subject(namespace=namespace)),
    )


# --- roles and bindings ---------------------------------------------------------------------


def test_role_allows_exactly_its_verbs_and_resources_in_its_namespace() -> None:
    objects = sa_role(rule(["get", "list"], ["configmaps"]))
    assert can(objects, "get", "configmaps", "ns", name="x")
    assert can(objects, "list", "configmaps", "ns")
    assert not can(objects, "watch", "configmaps", "ns")
    assert not can(objects, "create", "configmaps", "ns")
    assert not can(objects, "delete", "configmaps", "ns", name="x")
    assert not can(objects, "get", "secrets", "ns", name="x")
    assert not can(objects, "get", "configmaps", "other", name="x")
    assert not can(objects, "list", "configmaps")  # all namespaces / cluster scope
    assert not can(objects, "get", "configmaps", "ns", group="apps", name="x")


def test_role_grants_nothing_to_other_users() -> None:
    objects = sa_role(rule(["*"], ["*"], ["*"]))
    assert can(objects, "delete", "pods", "ns", name="p")
    assert not can(objects, "get", "pods", "ns", user="system:serviceaccount:ns:other")
    assert not can(objects, "get", "pods", "ns", user="system:serviceaccount:other:sa")
    assert not can(objects, "get", "pods", "ns", user="alice", groups=())


def test_deleting_the_binding_removes_access_immediately() -> None:
    objects = sa_role(rule(["get"], ["pods"]))
    authorizer = Authorizer(objects)
    attrs = Attributes(SA, SA_GROUPS, "get", "ns", "", "pods", name="p")
    assert authorizer.authorize(attrs)[0]
    objects.buckets[ROLE_BINDINGS].clear()
    assert not authorizer.authorize(attrs)[0]


def test_rolebinding_to_role_in_another_namespace_does_not_grant() -> None:
    objects = Objects().add(
        role("r", "other", rule(["get"], ["pods"])),
        role_binding("rb", "ns", ref("Role", "r"), sa_subject()),
    )
    assert not can(objects, "get", "pods", "ns", name="p")
    assert not can(objects, "get", "pods", "other", name="p")


def test_clusterrole_through_rolebinding_is_limited_to_the_namespace() -> None:
    objects = Objects().add(
        cluster_role("reader", rule(["get", "list"], ["pods"])),
        role_binding("rb", "ns", ref("ClusterRole", "reader"), sa_subject()),
    )
    assert can(objects, "list", "pods", "ns")
    assert not can(objects, "list", "pods", "other")
    assert not can(objects, "list", "pods")


def test_clusterrolebinding_grants_everywhere() -> None:
    objects = Objects().add(
        cluster_role("reader", rule(["list"], ["pods", "namespaces"])),
        cluster_role_binding("crb", ref("ClusterRole", "reader"), sa_subject()),
    )
    assert can(objects, "list", "pods", "ns")
    assert can(objects, "list", "pods", "other")
    assert can(objects, "list", "pods")
    assert can(objects, "list", "namespaces")
    assert not can(objects, "get", "pods", "ns", name="p")


def test_clusterrolebinding_to_a_role_is_ignored() -> None:
    objects = Objects().add(
        role("r", "ns", rule(["get"], ["pods"])),
        cluster_role_binding("crb", ref("Role", "r"), sa_subject()),
    )
    assert not can(objects, "get", "pods", "ns", name="p")


def test_role_ref_with_a_foreign_api_group_is_ignored() -> None:
    bad_ref = {"apiGroup": "example.com", "kind": "Role", "name": "r"}
    objects = Objects().add(
        role("r", "ns", rule(["get"], ["pods"])),
        role_binding("rb", "ns", bad_ref, sa_subject()),
    )
    assert not can(objects, "get", "pods", "ns", name="p")


def test_missing_role_is_reported_in_the_reason() -> None:
    objects = Objects().add(
        role_binding("rb", "ns", ref("Role", "gone"), sa_subject()),
        role_binding("rb2", "ns", ref("ClusterRole", "gone-too"), sa_subject()),
    )
    attrs = Attributes(SA, SA_GROUPS, "get", "ns", "", "pods", name="p")
    allowed, reason = Authorizer(objects).authorize(attrs)
    assert not allowed
    assert reason == (
        'RBAC: [role.rbac.authorization.k8s.io "gone" not found, '
        'clusterrole.rbac.authorization.k8s.io "gone-too" not found]'
    )
    # A binding for someone else naming a missing role is none of this user's business.
    other = Objects().add(
        role_binding("rb", "ns", ref("Role", "gone"), user_subject("bob")),
    )
    assert Authorizer(other).authorize(attrs) == (False, "")


def test_allowed_reason_names_the_binding() -> None:
    objects = sa_role(rule(["get"], ["pods"]))
    attrs = Attributes(SA, SA_GROUPS, "get", "ns", "", "pods", name="p")
    assert Authorizer(objects).authorize(attrs) == (
        True,
        'RBAC: allowed by RoleBinding "rb/ns" of Role "r" to ServiceAccount "sa/ns"',
    )
    crb = Objects().add(
        cluster_role("c", rule(["get"], ["pods"])),
        cluster_role_binding("crb", ref("ClusterRole", "c"), user_subject(SA)),
    )
    assert Authorizer(crb).authorize(attrs) == (
        True,
        f'RBAC: allowed by ClusterRoleBinding "crb" of ClusterRole "c" to User "{SA}"',
    )


def test_malformed_objects_do_not_crash() -> None:
    objects = Objects().add(
        {"kind": "Role", "metadata": meta("r", "ns"), "rules": "nope"},
        {"kind": "RoleBinding", "metadata": meta("rb", "ns"), "roleRef": ref("Role", "r")},
        {"kind": "RoleBinding", "metadata": meta("rb2", "ns"), "subjects": [sa_subject()]},
        role_binding("rb3", "ns", ref("Role", "r"), "junk", {"kind": "User"}, sa_subject()),
        {"kind": "ClusterRole", "metadata": meta("c"), "rules": ["junk", {"verbs": "get"}]},
        cluster_role_binding("crb", ref("ClusterRole", "c"), sa_subject()),
    )
    assert not can(objects, "get", "pods", "ns", name="p")


# --- subjects -------------------------------------------------------------------------------


def test_user_subject() -> None:
    objects = Objects().add(
        role("r", "ns", rule(["get"], ["pods"])),
        role_binding("rb", "ns", ref("Role", "r"), user_subject("alice")),
    )
    assert can(objects, "get", "pods", "ns", name="p", user="alice", groups=())
    assert not can(objects, "get", "pods", "ns", name="p", user="bob", groups=())


def test_group_subject() -> None:
    objects = Objects().add(
        cluster_role("c", rule(["list"], ["pods"])),
        cluster_role_binding(
            "crb", ref("ClusterRole", "c"), group_subject("system:serviceaccounts:ns")
        ),
    )
    assert can(objects, "list", "pods", "x")
    assert not can(
        objects,
        "list",
        "pods",
        "x",
        user="system:serviceaccount:b:sa",
        groups=("system:serviceaccounts:b",),
    )


def test_service_account_subject_defaults_to_the_binding_namespace() -> None:
    objects = Objects().add(
        role("r", "ns", rule(["get"], ["pods"])),
        role_binding("rb", "ns", ref("Role", "r"), sa_subject(namespace=None)),
    )
    assert can(objects, "get", "pods", "ns", name="p")


def test_service_account_subject_from_another_namespace() -> None:
    objects = Objects().add(
        role("r", "target", rule(["get"], ["pods"])),
        role_binding("rb", "target", ref("Role", "r"), sa_subject("sa", "ns")),
    )
    assert can(objects, "get", "pods", "target", name="p")
    assert not can(
        objects, "get", "pods", "target", name="p", user="system:serviceaccount:target:sa"
    )


def test_service_account_subject_without_namespace_in_clusterrolebinding_matches_nobody() -> None:
    objects = Objects().add(
        cluster_role("c", rule(["get"], ["pods"])),
        cluster_role_binding("crb", ref("ClusterRole", "c"), sa_subject(namespace=None)),
    )
    assert not can(objects, "get", "pods", "ns", name="p")


# --- rule matching --------------------------------------------------------------------------


def test_wildcards() -> None:
    objects = sa_role(rule(["*"], ["*"], ["*"]))
    assert can(objects, "deletecollection", "deployments", "ns", group="apps")
    assert can(objects, "get", "pods", "ns", sub="log", name="p")
    verbs_only = sa_role(rule(["*"], ["pods"]))
    assert can(verbs_only, "patch", "pods", "ns", name="p")
    assert not can(verbs_only, "patch", "pods", "ns", group="apps", name="p")
    groups_only = sa_role(rule(["get"], ["things"], ["*"]))
    assert can(groups_only, "get", "things", "ns", group="example.com", name="t")
    assert not can(groups_only, "list", "things", "ns", group="example.com")


def test_api_groups() -> None:
    objects = sa_role(
        rule(["get"], ["deployments"], ["apps"]), rule(["get"], ["agentruns"], ["sympozium.ai"])
    )
    assert can(objects, "get", "deployments", "ns", group="apps", name="d")
    assert not can(objects, "get", "deployments", "ns", group="extensions", name="d")
    assert not can(objects, "get", "deployments", "ns", name="d")
    assert can(objects, "get", "agentruns", "ns", group="sympozium.ai", name="a")


def test_request_verb_star_needs_rule_verb_star() -> None:
    assert not can(sa_role(rule(["get", "list"], ["pods"])), "*", "pods", "ns")
    assert can(sa_role(rule(["*"], ["pods"])), "*", "pods", "ns")


def test_resource_names() -> None:
    objects = sa_role(
        rule(
            ["get", "update", "delete", "list", "watch", "create", "deletecollection"],
            ["configmaps"],
            names=["allowed"],
        )
    )
    assert can(objects, "get", "configmaps", "ns", name="allowed")
    assert can(objects, "update", "configmaps", "ns", name="allowed")
    assert can(objects, "delete", "configmaps", "ns", name="allowed")
    assert not can(objects, "get", "configmaps", "ns", name="other")
    for verb in ("list", "watch", "create", "deletecollection"):
        assert not can(objects, verb, "configmaps", "ns"), verb
    # list/watch narrowed to one name with a fieldSelector carry the name.
    assert can(objects, "list", "configmaps", "ns", name="allowed")
    assert can(objects, "watch", "configmaps", "ns", name="allowed")
    assert can(
        sa_role(rule(["get"], ["configmaps"], names=[])), "get", "configmaps", "ns", name="x"
    )


def test_subresources() -> None:
    objects = sa_role(
        rule(["get"], ["pods", "pods/log"]), rule(["update"], ["deployments/scale"], ["apps"])
    )
    assert can(objects, "get", "pods", "ns", name="p")
    assert can(objects, "get", "pods", "ns", sub="log", name="p")
    assert not can(objects, "get", "pods", "ns", sub="exec", name="p")
    assert not can(objects, "get", "pods", "ns", sub="status", name="p")
    assert can(objects, "update", "deployments", "ns", group="apps", sub="scale", name="d")
    assert not can(objects, "update", "deployments", "ns", group="apps", name="d")


def test_resource_grant_does_not_cover_its_subresources() -> None:
    objects = sa_role(rule(["*"], ["pods"]))
    assert not can(objects, "create", "pods", "ns", sub="exec", name="p")
    assert not can(objects, "get", "pods", "ns", sub="log", name="p")


def test_star_slash_subresource() -> None:
    objects = sa_role(rule(["get", "update"], ["*/status"], ["*"]))
    assert can(objects, "get", "pods", "ns", sub="status", name="p")
    assert can(objects, "update", "deployments", "ns", group="apps", sub="status", name="d")
    assert not can(objects, "get", "pods", "ns", name="p")
    assert not can(objects, "get", "pods", "ns", sub="log", name="p")
    assert not can(objects, "get", "pods", "ns", sub="statusx", name="p")


def test_resource_slash_star_is_not_a_wildcard_as_upstream() -> None:
    objects = sa_role(rule(["get"], ["pods/*"]))
    assert not can(objects, "get", "pods", "ns", sub="log", name="p")
    assert not can(objects, "get", "pods", "ns", name="p")


def test_rule_allows_directly() -> None:
    attrs = Attributes("u", (), "get", "ns", "", "pods", name="p")
    assert rule_allows(attrs, rule(["get"], ["pods"]))
    assert not rule_allows(attrs, {"verbs": ["get"], "resources": ["pods"]})  # no apiGroups
    assert not rule_allows(attrs, {"verbs": ["get"], "nonResourceURLs": ["*"]})


# --- non-resource URLs ----------------------------------------------------------------------


def test_non_resource_urls_from_clusterrolebindings() -> None:
    objects = Objects().add(
        cluster_role("metrics", {"verbs": ["get"], "nonResourceURLs": ["/metrics", "/logs/*"]}),
        cluster_role_binding("crb", ref("ClusterRole", "metrics"), sa_subject()),
    )
    assert can_path(objects, "get", "/metrics")
    assert can_path(objects, "get", "/logs/")
    assert can_path(objects, "get", "/logs/kube.log")
    assert not can_path(objects, "get", "/logs")
    assert not can_path(objects, "post", "/metrics")
    assert not can_path(objects, "get", "/metricsx")
    star = Objects().add(
        cluster_role("all", {"verbs": ["*"], "nonResourceURLs": ["*"]}),
        cluster_role_binding("crb", ref("ClusterRole", "all"), sa_subject()),
    )
    assert can_path(star, "post", "/anything/at/all")


def test_non_resource_rules_do_not_grant_resources_and_vice_versa() -> None:
    objects = Objects().add(
        cluster_role("c", {"verbs": ["*"], "nonResourceURLs": ["*"]}, rule(["get"], ["pods"])),
        cluster_role_binding("crb", ref("ClusterRole", "c"), sa_subject()),
    )
    assert not can(objects, "list", "pods", "ns")
    assert can(objects, "get", "pods", "ns", name="p")
    assert not can_path(
        Objects().add(
            cluster_role("c", rule(["*"], ["*"], ["*"])),
            cluster_role_binding("crb", ref("ClusterRole", "c"), sa_subject()),
        ),
        "get",
        "/metrics",
    )


def test_non_resource_urls_through_a_rolebinding_do_not_apply() -> None:
    objects = Objects().add(
        cluster_role("metrics", {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}),
        role_binding("rb", "ns", ref("ClusterRole", "metrics"), sa_subject()),
    )
    assert not can_path(objects, "get", "/metrics")


# --- superuser and built-in defaults --------------------------------------------------------


def test_system_masters_is_superuser() -> None:
    empty = Objects()
    admin: dict[str, Any] = {"user": "admin", "groups": ("system:masters", "system:authenticated")}
    assert can(empty, "delete", "namespaces", name="kube-system", **admin)
    assert can(empty, "create", "pods", "ns", sub="exec", name="p", **admin)
    assert can_path(empty, "get", "/metrics", **admin)
    assert empty.reads == []  # no need to read any policy


def test_discovery_defaults_for_authenticated_users() -> None:
    empty = Objects()
    for path in (
        "/version",
        "/version/",
        "/healthz",
        "/livez",
        "/readyz",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/openapi",
        "/openapi/v3",
        "/openapi/v3/api/v1",
    ):
        assert can_path(empty, "get", path), path
        assert not can_path(empty, "post", path), path
    assert not can_path(empty, "get", "/metrics")
    assert not can_path(empty, "get", "/openapix")
    assert not can_path(empty, "get", "/logs/")


def test_defaults_apply_even_without_the_authenticated_group() -> None:
    empty = Objects()
    assert can_path(empty, "get", "/version", user="alice", groups=())
    assert can_path(empty, "get", "/api", user=SA, groups=("system:serviceaccounts",))


def test_anonymous_only_gets_public_info() -> None:
    empty = Objects()
    anonymous: dict[str, Any] = {"user": "system:anonymous", "groups": ("system:unauthenticated",)}
    assert can_path(empty, "get", "/healthz", **anonymous)
    assert can_path(empty, "get", "/version", **anonymous)
    assert not can_path(empty, "get", "/api", **anonymous)
    assert not can(
        empty, "create", "selfsubjectaccessreviews", group="authorization.k8s.io", **anonymous
    )


def test_basic_user_defaults() -> None:
    empty = Objects()
    assert can(empty, "create", "selfsubjectaccessreviews", group="authorization.k8s.io")
    assert can(empty, "create", "selfsubjectrulesreviews", group="authorization.k8s.io")
    assert can(empty, "create", "selfsubjectreviews", group="authentication.k8s.io")
    assert not can(empty, "create", "subjectaccessreviews", group="authorization.k8s.io")
    assert not can(empty, "list", "selfsubjectaccessreviews", group="authorization.k8s.io")
    assert not can(empty, "list", "pods", "ns")
    attrs = Attributes(SA, SA_GROUPS, "get", path="/version", resource_request=False)
    assert Authorizer(empty).authorize(attrs) == (
        True,
        'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole '
        '"system:discovery" to Group "system:authenticated"',
    )


def test_stored_binding_to_system_authenticated_applies_to_everyone_authenticated() -> None:
    objects = Objects().add(
        cluster_role("c", rule(["list"], ["namespaces"])),
        cluster_role_binding("crb", ref("ClusterRole", "c"), group_subject("system:authenticated")),
    )
    assert can(objects, "list", "namespaces", user="alice", groups=())


# --- forbidden messages ---------------------------------------------------------------------


def test_forbidden_message_shapes() -> None:
    def msg(**kw: Any) -> str:
        return forbidden_message(Attributes(user=SA, groups=(), **kw))

    assert msg(verb="list", namespace="ns", resource="configmaps") == (
        f'configmaps is forbidden: User "{SA}" cannot list resource "configmaps" '
        'in API group "" in the namespace "ns"'
    )
    assert msg(verb="get", namespace="ns", resource="configmaps", name="x") == (
        f'configmaps "x" is forbidden: User "{SA}" cannot get resource "configmaps" '
        'in API group "" in the namespace "ns"'
    )
    assert msg(verb="list", resource="namespaces") == (
        f'namespaces is forbidden: User "{SA}" cannot list resource "namespaces" '
        'in API group "" at the cluster scope'
    )
    assert msg(verb="get", namespace="ns", resource="pods", subresource="log", name="p") == (
        f'pods "p" is forbidden: User "{SA}" cannot get resource "pods/log" '
        'in API group "" in the namespace "ns"'
    )
    assert msg(verb="create", namespace="ns", api_group="sympozium.ai", resource="agentruns") == (
        f'agentruns.sympozium.ai is forbidden: User "{SA}" cannot create resource '
        '"agentruns" in API group "sympozium.ai" in the namespace "ns"'
    )
    assert msg(verb="get", path="/metrics", resource_request=False) == (
        f'forbidden: User "{SA}" cannot get path "/metrics"'
    )


def test_forbidden_message_with_reason_and_error() -> None:
    attrs = Attributes("u", (), "get", "ns", "apps", "deployments", name="d")
    reason = 'RBAC: role.rbac.authorization.k8s.io "r" not found'
    assert forbidden_message(attrs, reason) == (
        'deployments.apps "d" is forbidden: User "u" cannot get resource "deployments" '
        'in API group "apps" in the namespace "ns": RBAC: role.rbac.authorization.k8s.io '
        '"r" not found'
    )
    error = forbidden_error(attrs)
    assert error.code == 403
    status = error.to_status()
    assert status["reason"] == "Forbidden"
    assert status["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    path_error = forbidden_error(Attributes("u", (), "get", path="/x", resource_request=False))
    assert path_error.to_status()["message"] == 'forbidden: User "u" cannot get path "/x"'
    assert "details" not in path_error.to_status()


# --- SelfSubjectAccessReview ----------------------------------------------------------------


def ssar(spec: Obj) -> Obj:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": spec,
    }


def test_self_subject_access_review_resource() -> None:
    authorizer = Authorizer(sa_role(rule(["get"], ["pods", "pods/log"])))
    allowed = self_subject_access_review(
        ssar(
            {
                "resourceAttributes": {
                    "namespace": "ns",
                    "verb": "get",
                    "resource": "pods",
                    "subresource": "log",
                    "name": "p",
                    "version": "v1",
                }
            }
        ),
        SA,
        list(SA_GROUPS),
        authorizer,
    )
    assert allowed["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "rb/ns" of Role "r" to ServiceAccount "sa/ns"',
    }
    assert allowed["kind"] == "SelfSubjectAccessReview"
    assert allowed["apiVersion"] == "authorization.k8s.io/v1"
    assert allowed["spec"]["resourceAttributes"]["resource"] == "pods"
    denied = authorizer.self_subject_access_review(
        ssar({"resourceAttributes": {"namespace": "other", "verb": "get", "resource": "pods"}}),
        SA,
        list(SA_GROUPS),
    )
    assert denied["status"] == {"allowed": False}
    grouped = authorizer.self_subject_access_review(
        ssar(
            {
                "resourceAttributes": {
                    "namespace": "ns",
                    "verb": "get",
                    "group": "apps",
                    "resource": "pods",
                }
            }
        ),
        SA,
        list(SA_GROUPS),
    )
    assert grouped["status"]["allowed"] is False


def test_self_subject_access_review_does_not_mutate_input() -> None:
    review = ssar({"resourceAttributes": {"verb": "list", "resource": "pods"}})
    answer = Authorizer(Objects()).self_subject_access_review(review, "admin", ["system:masters"])
    assert answer["status"] == {"allowed": True}
    assert "status" not in review


def test_self_subject_access_review_non_resource() -> None:
    authorizer = Authorizer(Objects())
    answer = authorizer.self_subject_access_review(
        ssar({"nonResourceAttributes": {"path": "/version", "verb": "get"}}), SA, list(SA_GROUPS)
    )
    assert answer["status"]["allowed"] is True
    answer = authorizer.self_subject_access_review(
        ssar({"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}), SA, list(SA_GROUPS)
    )
    assert answer["status"] == {"allowed": False}


def test_self_subject_access_review_needs_exactly_one_kind_of_attributes() -> None:
    authorizer = Authorizer(Objects())
    with pytest.raises(StatusError) as neither:
        authorizer.self_subject_access_review(ssar({}), SA, [])
    assert neither.value.code == 422
    assert "exactly one of nonResourceAttributes or resourceAttributes" in neither.value.message
    both = {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"verb": "get"}}
    with pytest.raises(StatusError) as two:
        authorizer.self_subject_access_review(ssar(both), SA, [])
    assert two.value.code == 422
    assert "cannot be specified in combination" in two.value.message


# --- HTTP request mapping -------------------------------------------------------------------


def attrs_of(method: str, path: str, query: dict[str, str] | None = None) -> tuple[Any, ...]:
    a = request_attributes(method, path, query or {}, "u", ["g"])
    assert a.user == "u"
    assert a.groups == ("g",)
    if not a.resource_request:
        return ("path", a.verb, a.path)
    return (a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name)


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "ns", "", "pods", "", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "1"}, ("watch", "ns", "", "pods", "", "")),
        (
            "GET",
            "/api/v1/namespaces/ns/pods",
            {"watch": "true"},
            ("watch", "ns", "", "pods", "", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/pods",
            {"watch": "false"},
            ("list", "ns", "", "pods", "", ""),
        ),
        ("GET", "/api/v1/namespaces/ns/pods/p", {}, ("get", "ns", "", "pods", "", "p")),
        ("HEAD", "/api/v1/namespaces/ns/pods/p", {}, ("get", "ns", "", "pods", "", "p")),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "ns", "", "pods", "log", "p")),
        (
            "POST",
            "/api/v1/namespaces/ns/pods/p/exec",
            {},
            ("create", "ns", "", "pods", "exec", "p"),
        ),
        ("POST", "/api/v1/namespaces/ns/pods", {}, ("create", "ns", "", "pods", "", "")),
        ("PUT", "/api/v1/namespaces/ns/pods/p", {}, ("update", "ns", "", "pods", "", "p")),
        (
            "PUT",
            "/api/v1/namespaces/ns/pods/p/status",
            {},
            ("update", "ns", "", "pods", "status", "p"),
        ),
        ("PATCH", "/api/v1/namespaces/ns/pods/p", {}, ("patch", "ns", "", "pods", "", "p")),
        ("DELETE", "/api/v1/namespaces/ns/pods/p", {}, ("delete", "ns", "", "pods", "", "p")),
        (
            "DELETE",
            "/api/v1/namespaces/ns/pods",
            {},
            ("deletecollection", "ns", "", "pods", "", ""),
        ),
        ("GET", "/api/v1/pods", {}, ("list", "", "", "pods", "", "")),
        ("GET", "/api/v1/pods", {"watch": "1"}, ("watch", "", "", "pods", "", "")),
        (
            "POST",
            "/api/v1/namespaces/ns/serviceaccounts/sa/token",
            {},
            ("create", "ns", "", "serviceaccounts", "token", "sa"),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/ns/deployments",
            {},
            ("list", "ns", "apps", "deployments", "", ""),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/ns/deployments/d",
            {},
            ("get", "ns", "apps", "deployments", "", "d"),
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/ns/deployments/d/scale",
            {},
            ("update", "ns", "apps", "deployments", "scale", "d"),
        ),
        ("GET", "/apis/apps/v1/deployments", {}, ("list", "", "apps", "deployments", "", "")),
        (
            "POST",
            "/apis/sympozium.ai/v1alpha1/namespaces/ns/agentruns",
            {},
            ("create", "ns", "sympozium.ai", "agentruns", "", ""),
        ),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/c",
            {},
            ("get", "", "rbac.authorization.k8s.io", "clusterroles", "", "c"),
        ),
        ("GET", "/api/v1/nodes", {}, ("list", "", "", "nodes", "", "")),
        ("GET", "/api/v1/nodes/n/proxy", {}, ("get", "", "", "nodes", "proxy", "n")),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {},
            ("create", "", "authorization.k8s.io", "selfsubjectaccessreviews", "", ""),
        ),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "", "namespaces", "", "")),
        ("POST", "/api/v1/namespaces", {}, ("create", "", "", "namespaces", "", "")),
        ("GET", "/api/v1/namespaces/ns", {}, ("get", "ns", "", "namespaces", "", "ns")),
        ("DELETE", "/api/v1/namespaces/ns", {}, ("delete", "ns", "", "namespaces", "", "ns")),
        (
            "PUT",
            "/api/v1/namespaces/ns/status",
            {},
            ("update", "ns", "", "namespaces", "status", "ns"),
        ),
        (
            "PUT",
            "/api/v1/namespaces/ns/finalize",
            {},
            ("update", "ns", "", "namespaces", "finalize", "ns"),
        ),
        ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "ns", "", "pods", "", "")),
        ("GET", "/api/v1/watch/namespaces/ns/pods/p", {}, ("watch", "ns", "", "pods", "", "p")),
        ("GET", "/api/v1/watch/pods", {}, ("watch", "", "", "pods", "", "")),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            {"fieldSelector": "metadata.name=cm"},
            ("list", "ns", "", "configmaps", "", "cm"),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            {"fieldSelector": "metadata.name==cm", "watch": "1"},
            ("watch", "ns", "", "configmaps", "", "cm"),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            {"fieldSelector": "metadata.name!=cm"},
            ("list", "ns", "", "configmaps", "", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            {"fieldSelector": "status.phase=x,metadata.name=cm"},
            ("list", "ns", "", "configmaps", "", "cm"),
        ),
        ("GET", "/version", {}, ("path", "get", "/version")),
        ("GET", "/healthz", {}, ("path", "get", "/healthz")),
        ("GET", "/api", {}, ("path", "get", "/api")),
        ("GET", "/api/v1", {}, ("path", "get", "/api/v1")),
        ("GET", "/apis", {}, ("path", "get", "/apis")),
        ("GET", "/apis/apps", {}, ("path", "get", "/apis/apps")),
        ("GET", "/apis/apps/v1", {}, ("path", "get", "/apis/apps/v1")),
        ("GET", "/openapi/v3", {}, ("path", "get", "/openapi/v3")),
        ("POST", "/metrics", {}, ("path", "post", "/metrics")),
        ("PUT", "/", {}, ("path", "put", "/")),
        ("DELETE", "/logs/x", {}, ("path", "delete", "/logs/x")),
        ("PATCH", "/other/a/b/c", {}, ("path", "patch", "/other/a/b/c")),
    ],
)
def test_request_attributes(
    method: str, path: str, query: dict[str, str], expected: tuple[Any, ...]
) -> None:
    assert attrs_of(method, path, query) == expected


def test_request_attributes_end_to_end_with_the_authorizer() -> None:
    authorizer = Authorizer(sa_role(rule(["get", "list", "watch"], ["configmaps"])))

    def allowed(method: str, path: str, query: dict[str, str] | None = None) -> bool:
        return authorizer.authorize(request_attributes(method, path, query or {}, SA, SA_GROUPS))[0]

    assert allowed("GET", "/api/v1/namespaces/ns/configmaps")
    assert allowed("GET", "/api/v1/namespaces/ns/configmaps", {"watch": "1"})
    assert allowed("GET", "/api/v1/namespaces/ns/configmaps/x")
    assert not allowed("POST", "/api/v1/namespaces/ns/configmaps")
    assert not allowed("DELETE", "/api/v1/namespaces/ns/configmaps")
    assert not allowed("GET", "/api/v1/namespaces/other/configmaps")
    assert not allowed("GET", "/api/v1/configmaps")
    assert not allowed("GET", "/api/v1/namespaces/ns")
    assert allowed("GET", "/api/v1")
    assert allowed("GET", "/version")
    assert not allowed("GET", "/metrics")
    denied = request_attributes("GET", "/api/v1/namespaces/ns/secrets/s", {}, SA, SA_GROUPS)
    assert forbidden_message(denied) == (
        f'secrets "s" is forbidden: User "{SA}" cannot get resource "secrets" '
        'in API group "" in the namespace "ns"'
    )
