"""The RBAC authoriser: decides whether a user may do what a request asks, as kube-apiserver does.

A pure module: it reads Roles, RoleBindings, ClusterRoles and ClusterRoleBindings through a
callable (bucket name -> current objects, the registry's ``store.items``) on every call, so a
deleted binding stops granting access at once. The server wires it in.

Upstream behaviour followed (``plugin/pkg/auth/authorizer/rbac`` and ``rbac/v1`` helpers):

- The ``system:masters`` group is a superuser and is allowed everything.
- ClusterRoleBindings (roleRef ClusterRole) grant everywhere; RoleBindings in the request's
  namespace grant there only (roleRef a Role in that namespace or a ClusterRole). Requests
  without a namespace (cluster-scoped, all namespaces, non-resource paths) see only
  ClusterRoleBindings.
- Subjects: ``User`` and ``Group`` by name; ``ServiceAccount`` by name and namespace (the
  binding's namespace when the subject leaves it empty) matching
  ``system:serviceaccount:<ns>:<name>``.
- Rules: verbs, apiGroups and resources with ``*``; ``resource/subresource`` and
  ``*/subresource`` for subresources. As upstream, ``pods/*`` is *not* a wildcard for pods'
  subresources (upstream only matches ``*``, the exact ``resource/sub`` and ``*/sub``), and
  ``pods`` does not grant ``pods/log``. resourceNames (empty = all) only match a request that
  names an object, so ``create``/``list``/``watch``/``deletecollection`` without a name never
  match a rule with resourceNames. nonResourceURLs (exact, ``*``, or a trailing ``*`` prefix)
  only apply to non-resource requests, which only ClusterRoleBindings reach.
- A binding that applies to the user but names a missing role adds
  ``RBAC: role.rbac.authorization.k8s.io "x" not found`` to a denial's reason, as upstream.
- Upstream's bootstrap policy for ``system:authenticated`` is built in (not stored objects):
  ``system:discovery`` and ``system:public-info-viewer`` (get on /version, /healthz, /livez,
  /readyz, /api, /api/*, /apis, /apis/*, /openapi, /openapi/*) and ``system:basic-user``
  (create selfsubjectaccessreviews, selfsubjectrulesreviews, selfsubjectreviews).
  ``system:public-info-viewer`` also applies to ``system:unauthenticated``. Any user other than
  ``system:anonymous`` counts as a member of ``system:authenticated`` even if the
  authenticator did not list the group.

Not implemented: aggregated ClusterRoles (``aggregationRule``) are not expanded — only the
``rules`` stored on a ClusterRole count, so a ClusterRole that relies on aggregation grants
what its stored ``rules`` say (an aggregation controller fills those in upstream). There is no
Node authoriser, no webhook authoriser and no explicit Deny (RBAC only allows or has no opinion).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import errors

Obj = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLES = "roles.rbac.authorization.k8s.io"
ROLE_BINDINGS = "rolebindings.rbac.authorization.k8s.io"
CLUSTER_ROLES = "clusterroles.rbac.authorization.k8s.io"
CLUSTER_ROLE_BINDINGS = "clusterrolebindings.rbac.authorization.k8s.io"

SUPERUSER_GROUP = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

# Upstream's bootstrap ClusterRoles and ClusterRoleBindings that every user relies on
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), as
# (binding name, role name, subject groups, rules).
_PUBLIC_INFO_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
_DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*"]
BUILTIN_POLICY: tuple[tuple[str, str, tuple[str, ...], tuple[Obj, ...]], ...] = (
    (
        "system:discovery",
        "system:discovery",
        (AUTHENTICATED,),
        ({"verbs": ["get"], "nonResourceURLs": _DISCOVERY_URLS + _PUBLIC_INFO_URLS},),
    ),
    (
        "system:public-info-viewer",
        "system:public-info-viewer",
        (AUTHENTICATED, UNAUTHENTICATED),
        ({"verbs": ["get"], "nonResourceURLs": _PUBLIC_INFO_URLS},),
    ),
    (
        "system:basic-user",
        "system:basic-user",
        (AUTHENTICATED,),
        (
            {
                "verbs": ["create"],
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            },
            {
                "verbs": ["create"],
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
            },
        ),
    ),
)


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, like kube's ``authorizer.Attributes``."""

    user: str
    groups: tuple[str, ...]
    verb: str
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


# --- rule matching (rbac/v1 evaluation helpers) -------------------------------------------


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def verb_matches(rule: Obj, verb: str) -> bool:
    return any(v in ("*", verb) for v in _strings(rule.get("verbs")))


def api_group_matches(rule: Obj, group: str) -> bool:
    return any(g in ("*", group) for g in _strings(rule.get("apiGroups")))


def resource_matches(rule: Obj, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for granted in _strings(rule.get("resources")):
        if granted in ("*", combined):
            return True
        if subresource and granted == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: Obj, name: str) -> bool:
    names = _strings(rule.get("resourceNames"))
    return not names or name in names


def non_resource_url_matches(rule: Obj, path: str) -> bool:
    for url in _strings(rule.get("nonResourceURLs")):
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    """Whether one PolicyRule grants the request (upstream's ``RuleAllows``)."""
    if attrs.resource_request:
        return (
            verb_matches(rule, attrs.verb)
            and api_group_matches(rule, attrs.api_group)
            and resource_matches(rule, attrs.resource, attrs.subresource)
            and resource_name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


# --- subjects -------------------------------------------------------------------------------


def effective_groups(user: str, groups: Iterable[str]) -> tuple[str, ...]:
    """The user's groups, with ``system:authenticated`` for any non-anonymous user."""
    result = tuple(groups)
    if user and user != ANONYMOUS and UNAUTHENTICATED not in result and AUTHENTICATED not in result:
        result += (AUTHENTICATED,)
    return result


def subject_applies(subject: Any, user: str, groups: tuple[str, ...], namespace: str) -> bool:
    """Whether a binding subject names this user (``namespace``: the binding's, for SAs)."""
    if not isinstance(subject, dict):
        return False
    kind = subject.get("kind")
    name = subject.get("name")
    if not isinstance(name, str):
        return False
    if kind == "User":
        return user == name
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user == f"{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{name}"
    return False


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    name = subject.get("name", "")
    if subject.get("kind") == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or binding_namespace}"
    return f'{subject.get("kind", "")} "{name}"'


# --- the authoriser -------------------------------------------------------------------------


class Authorizer:
    """Evaluates requests against the RBAC objects that ``objects(bucket)`` returns."""

    def __init__(self, objects: Callable[[str], list[Obj]]) -> None:
        self._objects = objects

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """``(allowed, reason)``: the reason names the granting binding, or why none did."""
        if SUPERUSER_GROUP in attrs.groups:
            return True, ""
        groups = effective_groups(attrs.user, attrs.groups)
        problems: list[str] = []
        for source, rules in self._rules_for(attrs.user, groups, attrs.namespace, problems):
            if any(isinstance(rule, dict) and rule_allows(attrs, rule) for rule in rules):
                return True, f"RBAC: allowed by {source}"
        if not problems:
            return False, ""
        joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        return False, f"RBAC: {joined}"

    def _rules_for(
        self, user: str, groups: tuple[str, ...], namespace: str, problems: list[str]
    ) -> Iterator[tuple[str, list[Any]]]:
        """(description, rules) of every binding that applies, like ``VisitRulesFor``."""
        for binding_name, role_name, subject_groups, builtin_rules in BUILTIN_POLICY:
            for group in subject_groups:
                if group in groups:
                    yield (
                        f'ClusterRoleBinding "{binding_name}" of ClusterRole "{role_name}" '
                        f'to Group "{group}"',
                        list(builtin_rules),
                    )
                    break

        cluster_roles: dict[str, Obj] | None = None

        def cluster_role(name: str) -> Obj | None:
            nonlocal cluster_roles
            if cluster_roles is None:
                cluster_roles = {_name(r): r for r in self._objects(CLUSTER_ROLES)}
            return cluster_roles.get(name)

        for binding in self._objects(CLUSTER_ROLE_BINDINGS):
            subject = _applying_subject(binding, user, groups, "")
            if subject is None:
                continue
            ref = _role_ref(binding)
            if ref is None or ref[0] != "ClusterRole":
                continue
            role = cluster_role(ref[1])
            if role is None:
                problems.append(f'clusterrole.{RBAC_GROUP} "{ref[1]}" not found')
                continue
            yield (
                f'ClusterRoleBinding "{_name(binding)}" of ClusterRole "{ref[1]}" '
                f"to {_describe_subject(subject, '')}",
                _rules(role),
            )

        if not namespace:
            return
        roles: dict[str, Obj] | None = None
        for binding in self._objects(ROLE_BINDINGS):
            if _namespace(binding) != namespace:
                continue
            subject = _applying_subject(binding, user, groups, namespace)
            if subject is None:
                continue
            ref = _role_ref(binding)
            if ref is None:
                continue
            kind, role_name = ref
            if kind == "Role":
                if roles is None:
                    roles = {
                        _name(r): r for r in self._objects(ROLES) if _namespace(r) == namespace
                    }
                role = roles.get(role_name)
                missing = f'role.{RBAC_GROUP} "{role_name}" not found'
            elif kind == "ClusterRole":
                role = cluster_role(role_name)
                missing = f'clusterrole.{RBAC_GROUP} "{role_name}" not found'
            else:
                continue
            if role is None:
                problems.append(missing)
                continue
            yield (
                f'RoleBinding "{_name(binding)}/{namespace}" of {kind} "{role_name}" '
                f"to {_describe_subject(subject, namespace)}",
                _rules(role),
            )

    def self_subject_access_review(self, review: Obj, user: str, groups: list[str]) -> Obj:
        """Answer a SelfSubjectAccessReview for this user (see the module function)."""
        return self_subject_access_review(review, user, groups, self)


def _metadata(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _name(obj: Obj) -> str:
    return str(_metadata(obj).get("name", ""))


def _namespace(obj: Obj) -> str:
    return str(_metadata(obj).get("namespace") or "")


def _rules(role: Obj) -> list[Any]:
    rules = role.get("rules")
    return rules if isinstance(rules, list) else []


def _role_ref(binding: Obj) -> tuple[str, str] | None:
    ref = binding.get("roleRef")
    if not isinstance(ref, dict):
        return None
    if ref.get("apiGroup", RBAC_GROUP) not in (RBAC_GROUP, ""):
        return None
    kind, name = ref.get("kind"), ref.get("name")
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    return kind, name


def _applying_subject(
    binding: Obj, user: str, groups: tuple[str, ...], namespace: str
) -> Obj | None:
    subjects = binding.get("subjects")
    if not isinstance(subjects, list):
        return None
    for subject in subjects:
        if subject_applies(subject, user, groups, namespace):
            return dict(subject)
    return None


# --- denial messages ------------------------------------------------------------------------


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    """The 403 message kube-apiserver writes for a denied request (``responsewriters``)."""
    if not attrs.resource_request:
        detail = f'User "{attrs.user}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        detail = (
            f'User "{attrs.user}" cannot {attrs.verb} resource "{resource}" '
            f'in API group "{attrs.api_group}"'
        )
        if attrs.namespace:
            detail += f' in the namespace "{attrs.namespace}"'
        else:
            detail += " at the cluster scope"
    if reason:
        detail += f": {reason}"
    if not attrs.resource_request or not attrs.resource:
        return f"forbidden: {detail}"
    what = errors.qualified(attrs.resource, attrs.api_group)
    if attrs.name:
        return f'{what} "{attrs.name}" is forbidden: {detail}'
    return f"{what} is forbidden: {detail}"


def forbidden_error(attrs: Attributes, reason: str = "") -> errors.StatusError:
    """The whole 403 ``Forbidden`` Status error for a denied request."""
    if attrs.resource_request and attrs.resource:
        return errors.forbidden(
            forbidden_message(attrs, reason), attrs.resource, attrs.api_group, attrs.name
        )
    return errors.forbidden(forbidden_message(attrs, reason))


# --- SelfSubjectAccessReview ----------------------------------------------------------------


def review_attributes(review: Obj, user: str, groups: Iterable[str]) -> Attributes:
    """The attributes a SelfSubjectAccessReview asks about (422 if its spec is malformed)."""
    spec = review.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    resource_attrs = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if resource_attrs is not None and non_resource is not None:
        raise errors.invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            [
                errors.Cause(
                    "spec.nonResourceAttributes",
                    'Invalid value: "object": cannot be specified in combination with '
                    "resourceAttributes",
                )
            ],
        )
    if resource_attrs is None and non_resource is None:
        raise errors.invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            [
                errors.Cause(
                    "spec.resourceAttributes",
                    'Invalid value: "null": exactly one of nonResourceAttributes or '
                    "resourceAttributes must be specified",
                )
            ],
        )
    group_tuple = tuple(groups)
    if isinstance(resource_attrs, dict):
        return Attributes(
            user=user,
            groups=group_tuple,
            verb=str(resource_attrs.get("verb") or ""),
            namespace=str(resource_attrs.get("namespace") or ""),
            api_group=str(resource_attrs.get("group") or ""),
            resource=str(resource_attrs.get("resource") or ""),
            subresource=str(resource_attrs.get("subresource") or ""),
            name=str(resource_attrs.get("name") or ""),
        )
    non_resource = non_resource if isinstance(non_resource, dict) else {}
    return Attributes(
        user=user,
        groups=group_tuple,
        verb=str(non_resource.get("verb") or ""),
        path=str(non_resource.get("path") or ""),
        resource_request=False,
    )


def self_subject_access_review(
    review: Obj, user: str, groups: list[str], authorizer: Authorizer
) -> Obj:
    """Answer an ``authorization.k8s.io/v1`` SelfSubjectAccessReview: the review with status.

    ``status`` is ``{allowed, reason?}``; RBAC never denies outright, so ``denied`` is never set.
    Raises a 422 ``StatusError`` when the spec has neither or both kinds of attributes.
    """
    attrs = review_attributes(review, user, groups)
    allowed, reason = authorizer.authorize(attrs)
    result = copy.deepcopy(review)
    result["apiVersion"] = "authorization.k8s.io/v1"
    result["kind"] = "SelfSubjectAccessReview"
    metadata = result.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    metadata.setdefault("creationTimestamp", None)
    result["metadata"] = metadata
    status: Obj = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    result["status"] = status
    return result


# --- HTTP request -> attributes (apiserver's RequestInfoFactory) ---------------------------

_SPECIAL_VERBS = {"proxy", "watch"}
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}


def _exact_name(field_selector: str) -> str:
    """``metadata.name`` from a field selector that requires it exactly, if a valid name."""
    for term in field_selector.split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and not key.endswith("!"):
                if key.strip() == "metadata.name":
                    name = value.strip()
                    if name and name not in (".", "..") and "/" not in name and "%" not in name:
                        return name
                break
    return ""


def request_attributes(
    method: str, path: str, query: Mapping[str, str], user: str, groups: Iterable[str]
) -> Attributes:
    """Map an HTTP request on the API to authorisation attributes, as kube-apiserver does."""
    group_tuple = tuple(groups)
    non_resource = Attributes(
        user=user, groups=group_tuple, verb=method.lower(), path=path, resource_request=False
    )
    stripped = path.strip("/")
    parts = stripped.split("/") if stripped else []
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, parts = parts[0], parts[1:]
    api_group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return non_resource
        api_group, parts = parts[0], parts[1:]
    parts = parts[1:]  # the version

    via_path = parts[0] in _SPECIAL_VERBS
    if via_path:
        if len(parts) < 2:
            return non_resource
        verb, parts = parts[0], parts[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")

    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]

    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and not via_path else ""

    if not name and verb == "get":
        verb = "watch" if query.get("watch", "") in _TRUE else "list"
        name = _exact_name(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        user=user,
        groups=group_tuple,
        verb=verb,
        namespace=namespace,
        api_group=api_group,
        resource=resource,
        subresource=subresource,
        name=name,
        path=path,
    )
