"""OpenAPI v3 documents (`/openapi/v3`, `/openapi/v3/<api|apis/group>/<version>`).

kubectl reads them for two things. Its field-validation probe
(`QueryParamVerifierV3`) finds a PATCH operation tagged with the kind's
`x-kubernetes-group-version-kind` (a single map) and looks for an inline
`fieldValidation` query parameter; finding it, kubectl leaves validation to the
server. Client-side `kubectl apply` looks up `components.schemas` by the same
extension (a list of maps there) and, when the PATCH operation accepts
strategic merge patch, computes the patch from the `x-kubernetes-patch-*`
extensions of the built-in schemas. CRD kinds advertise no strategic merge patch,
so kubectl sends them JSON merge patches, as with a real cluster.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from localcluster import builtin_schemas
from localcluster.builtin_schemas import DELETE_OPTIONS, LIST_META, OBJECT_META, PATCH, STATUS
from localcluster.resources import BUILTIN_GROUP_ORDER, ResourceType

SERVER_VERSION = "v1.36.0"

_REF = "#/components/schemas/"
_JSON_TYPES = ("application/json", "application/yaml")
_SCALE = ResourceType("autoscaling", "v1", "Scale", "", "", True)
_TOKEN_REQUEST = ResourceType("authentication.k8s.io", "v1", "TokenRequest", "", "", True)

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#resources"
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DOC = (
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#metadata"
)


def _query(name: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": schema_type, "uniqueItems": True},
    }


_PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
_DRY_RUN = _query(
    "dryRun",
    "When present, indicates that modifications should not be persisted. Valid values are: "
    "All: all dry run stages will be processed",
)
_FIELD_MANAGER = _query(
    "fieldManager",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
)
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, "
    "Warn (the default), Strict.",
)
_FORCE = _query(
    "force",
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting '
    "fields owned by other people. Force flag must be unset for non-apply patch requests.",
    "boolean",
)
_LIST_PARAMS = [
    _query(
        "allowWatchBookmarks",
        'allowWatchBookmarks requests watch events with type "BOOKMARK".',
        "boolean",
    ),
    _query(
        "continue",
        "The continue option should be set when retrieving more results from the server.",
    ),
    _query(
        "fieldSelector",
        "A selector to restrict the list of returned objects by their "
        "fields. Defaults to everything.",
    ),
    _query(
        "labelSelector",
        "A selector to restrict the list of returned objects by their "
        "labels. Defaults to everything.",
    ),
    _query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _query(
        "resourceVersion",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    _query(
        "resourceVersionMatch",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    _query(
        "sendInitialEvents",
        "`sendInitialEvents=true` may be set together with `watch=true`.",
        "boolean",
    ),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query(
        "watch",
        "Watch for changes to the described resources and return them as a "
        "stream of add, update, and remove notifications.",
        "boolean",
    ),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _query(
        "gracePeriodSeconds",
        "The duration in seconds before the object should be deleted.",
        "integer",
    ),
    _query(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "if set to true, it will "
        "trigger an unsafe deletion of the resource in case the normal deletion flow "
        "fails with a corrupt object error.",
        "boolean",
    ),
    _query("orphanDependents", "Deprecated: please use the PropagationPolicy.", "boolean"),
    _query("propagationPolicy", "Whether and how garbage collection will be performed."),
]


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "description": description,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


_NAMESPACE = _path_param("namespace", "object name and auth scope, such as for teams and projects")


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version: `api/v1`, `apis/apps/v1`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _camel(group: str) -> str:
    if not group:
        return "Core"
    group = group.removesuffix(".k8s.io")
    return "".join(p[:1].upper() + p[1:] for p in group.replace("-", ".").split("."))


def _schema_name(rt: ResourceType) -> str:
    if rt.custom:
        reversed_group = ".".join(reversed(rt.group.split(".")))
        return f"{reversed_group}.{rt.version}.{rt.kind}"
    return builtin_schemas.component_name(rt)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


def _content(schema: dict[str, Any], types: Iterable[str] = _JSON_TYPES) -> dict[str, Any]:
    return {t: {"schema": schema} for t in types}


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


class _Ops:
    """Builds the operations of one resource (or subresource) path."""

    def __init__(self, rt: ResourceType, suffix: str = "", gvk: ResourceType | None = None):
        target = gvk or rt
        self.rt = rt
        self.kind_ref = _ref(_schema_name(target))
        self.gvk = _gvk(target.group, target.version, target.kind)
        scope = "Namespaced" if rt.namespaced else ""
        self.id_tail = f"{_camel(rt.group)}{rt.version.capitalize()}{scope}{rt.kind}{suffix}"
        self.tag = f"{_camel(rt.group)[:1].lower()}{_camel(rt.group)[1:]}_{rt.version}"

    def op(
        self,
        verb: str,
        action: str,
        description: str,
        params: list[dict[str, Any]],
        responses: dict[str, Any],
        body: dict[str, Any] | None = None,
        op_id: str = "",
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "tags": [self.tag],
            "description": description,
            "operationId": op_id or f"{verb}{self.id_tail}",
            "parameters": params,
        }
        if body is not None:
            operation["requestBody"] = body
        responses = {**responses, "401": {"description": "Unauthorized"}}
        operation["responses"] = responses
        operation["x-kubernetes-action"] = action
        operation["x-kubernetes-group-version-kind"] = dict(self.gvk)
        return operation

    def ok(self, *codes: str) -> dict[str, Any]:
        return {
            c: {"description": _CODE_TEXT[c], "content": _content(self.kind_ref)} for c in codes
        }

    def write_body(self) -> dict[str, Any]:
        return {"content": {"*/*": {"schema": self.kind_ref}}, "required": True}

    def patch_body(self) -> dict[str, Any]:
        types = [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
        ]
        if not self.rt.custom:
            types.append("application/strategic-merge-patch+json")
        return {"content": {t: {"schema": _ref(PATCH)} for t in types}, "required": True}

    def item(self, what: str, with_delete: bool) -> dict[str, Any]:
        verbs = self.rt.verbs
        item: dict[str, Any] = {}
        if "get" in verbs:
            item["get"] = self.op("read", "get", f"read {what}", [], self.ok("200"))
        if "update" in verbs:
            item["put"] = self.op(
                "replace",
                "put",
                f"replace {what}",
                [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
                self.ok("200", "201"),
                self.write_body(),
            )
        if "patch" in verbs:
            item["patch"] = self.op(
                "patch",
                "patch",
                f"partially update {what}",
                [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE],
                self.ok("200", "201"),
                self.patch_body(),
            )
        if with_delete and "delete" in verbs:
            status = _content(_ref(STATUS))
            item["delete"] = self.op(
                "delete",
                "delete",
                f"delete {what}",
                list(_DELETE_PARAMS),
                {
                    "200": {"description": "OK", "content": status},
                    "202": {"description": "Accepted", "content": status},
                },
                {"content": {"*/*": {"schema": _ref(DELETE_OPTIONS)}}},
            )
        return item


_CODE_TEXT = {"200": "OK", "201": "Created", "202": "Accepted"}


def _paths(rt: ResourceType) -> dict[str, dict[str, Any]]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced:
        collection = f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        scope_params = [_NAMESPACE]
    else:
        collection = f"{prefix}/{rt.plural}"
        scope_params = []
    name_param = _path_param("name", f"name of the {rt.kind}")
    item_params = [name_param, *scope_params, _PRETTY]
    ops = _Ops(rt)
    list_ref = _ref(_schema_name(rt) + "List")
    paths: dict[str, dict[str, Any]] = {}

    coll: dict[str, Any] = {}
    if "list" in rt.verbs:
        coll["get"] = ops.op(
            "list",
            "list",
            f"list or watch objects of kind {rt.kind}",
            list(_LIST_PARAMS),
            {
                "200": {
                    "description": "OK",
                    "content": _content(list_ref, [*_JSON_TYPES, "application/json;stream=watch"]),
                }
            },
        )
    if "create" in rt.verbs:
        coll["post"] = ops.op(
            "create",
            "post",
            f"create a {rt.kind}",
            [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
            ops.ok("200", "201", "202"),
            ops.write_body(),
        )
    if "deletecollection" in rt.verbs:
        coll["delete"] = ops.op(
            "delete",
            "deletecollection",
            f"delete collection of {rt.kind}",
            [*_DELETE_PARAMS, *_LIST_PARAMS],
            {"200": {"description": "OK", "content": _content(_ref(STATUS))}},
            {"content": {"*/*": {"schema": _ref(DELETE_OPTIONS)}}},
            op_id=f"delete{_camel(rt.group)}{rt.version.capitalize()}Collection"
            f"{'Namespaced' if rt.namespaced else ''}{rt.kind}",
        )
    if coll:
        coll["parameters"] = [*scope_params, _PRETTY]
        paths[collection] = coll

    if rt.namespaced and "list" in rt.verbs:
        all_ns = _Ops(rt)
        all_ns.id_tail = f"{_camel(rt.group)}{rt.version.capitalize()}{rt.kind}ForAllNamespaces"
        paths[f"{prefix}/{rt.plural}"] = {
            "get": all_ns.op(
                "list",
                "list",
                f"list or watch objects of kind {rt.kind}",
                list(_LIST_PARAMS),
                {
                    "200": {
                        "description": "OK",
                        "content": _content(
                            list_ref, [*_JSON_TYPES, "application/json;stream=watch"]
                        ),
                    }
                },
            ),
            "parameters": [_PRETTY],
        }

    item_path = f"{collection}/{{name}}"
    item = ops.item(f"the specified {rt.kind}", with_delete=True)
    if item:
        item["parameters"] = item_params
        paths[item_path] = item

    if "status" in rt.subresources:
        status_ops = _Ops(rt, "Status")
        status_ops.rt = _only_verbs(rt, ("get", "patch", "update"))
        paths[f"{item_path}/status"] = {
            **status_ops.item(f"status of the specified {rt.kind}", with_delete=False),
            "parameters": item_params,
        }
    if "scale" in rt.subresources:
        scale_ops = _Ops(rt, "Scale", gvk=_SCALE)
        scale_ops.rt = _only_verbs(rt, ("get", "patch", "update"))
        paths[f"{item_path}/scale"] = {
            **scale_ops.item(f"scale of the specified {rt.kind}", with_delete=False),
            "parameters": item_params,
        }
    if "log" in rt.subresources:
        log_ops = _Ops(rt, "Log")
        text = {"text/plain": {"schema": {"type": "string"}}}
        log_params = [
            _query("container", "The container for which to stream logs."),
            _query("follow", "Follow the log stream of the pod.", "boolean"),
            _query("previous", "Return previous terminated container logs.", "boolean"),
            _query(
                "sinceSeconds",
                "A relative time in seconds before the current time from which to show logs.",
                "integer",
            ),
            _query("tailLines", "the number of lines from the end of the logs to show.", "integer"),
            _query(
                "timestamps", "add an RFC3339 timestamp at the beginning of every line.", "boolean"
            ),
        ]
        paths[f"{item_path}/log"] = {
            "get": log_ops.op(
                "read",
                "get",
                f"read log of the specified {rt.kind}",
                log_params,
                {"200": {"description": "OK", "content": text}},
            ),
            "parameters": item_params,
        }
    if "token" in rt.subresources:
        token_ops = _Ops(rt, "Token", gvk=_TOKEN_REQUEST)
        paths[f"{item_path}/token"] = {
            "post": token_ops.op(
                "create",
                "post",
                f"create token of a {rt.kind}",
                [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
                token_ops.ok("200", "201", "202"),
                token_ops.write_body(),
            ),
            "parameters": item_params,
        }
    return paths


def _only_verbs(rt: ResourceType, verbs: tuple[str, ...]) -> ResourceType:
    return dataclasses.replace(rt, verbs=verbs)


def _custom_schema(rt: ResourceType) -> dict[str, Any]:
    schema = copy.deepcopy(rt.schema) if rt.schema else {}
    schema.setdefault("type", "object")
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"description": _API_VERSION_DOC, "type": "string"}
    properties["kind"] = {"description": _KIND_DOC, "type": "string"}
    properties["metadata"] = {"allOf": [_ref(OBJECT_META)], "description": _METADATA_DOC}
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt.group, rt.version, rt.kind)]
    return schema


def _list_schema(rt: ResourceType) -> dict[str, Any]:
    return {
        "description": f"{rt.list_kind} is a list of {rt.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": _API_VERSION_DOC, "type": "string"},
            "items": {
                "description": f"List of {rt.plural}.",
                "type": "array",
                "items": _ref(_schema_name(rt)),
            },
            "kind": {"description": _KIND_DOC, "type": "string"},
            "metadata": {"allOf": [_ref(LIST_META)], "description": _METADATA_DOC},
        },
        "x-kubernetes-group-version-kind": [_gvk(rt.group, rt.version, rt.list_kind)],
    }


def group_version_document(
    group: str, version: str, types: list[ResourceType], server_version: str = SERVER_VERSION
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version, from the types it serves."""
    served = sorted(
        (rt for rt in types if rt.group == group and rt.version == version),
        key=lambda rt: rt.plural,
    )
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = dict(builtin_schemas.meta_components())
    for rt in served:
        paths.update(_paths(rt))
        if rt.custom:
            schemas[_schema_name(rt)] = _custom_schema(rt)
        else:
            schemas.update(builtin_schemas.schema_components(rt))
        schemas[_schema_name(rt) + "List"] = _list_schema(rt)
        if "scale" in rt.subresources:
            schemas.update(builtin_schemas.schema_components(_SCALE))
        if "token" in rt.subresources:
            schemas.update(builtin_schemas.schema_components(_TOKEN_REQUEST))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def document_hash(document: bytes) -> str:
    """Upstream's content hash for `?hash=`: upper-case hex SHA-512."""
    return hashlib.sha512(document).hexdigest().upper()


def index(documents: dict[str, bytes]) -> dict[str, Any]:
    """The `/openapi/v3` discovery document, keyed like `api/v1`, `apis/apps/v1`."""
    return _index({path: document_hash(body) for path, body in documents.items()})


def _index(digests: dict[str, str]) -> dict[str, Any]:
    return {
        "paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
            for path, digest in digests.items()
        }
    }


def _group_rank(group: str) -> tuple[int, str]:
    if not group:
        return (0, "")
    if group in BUILTIN_GROUP_ORDER:
        return (1, f"{BUILTIN_GROUP_ORDER.index(group):04d}")
    return (2, group)


def _serialize(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class OpenAPIDocuments:
    """Serialized documents per group-version, rebuilt only when that GV's types change.

    The served types come from `types` (called on every request) unless a call passes
    them. A group-version's entry is keyed by its `ResourceType`s plus the identity of
    each schema dict (ResourceType equality ignores schemas), so a CRD update that
    produces new ResourceType objects is picked up by itself; `invalidate()` covers
    schema dicts mutated in place.
    """

    def __init__(
        self,
        types: Callable[[], Iterable[ResourceType]] | None = None,
        server_version: str = SERVER_VERSION,
    ) -> None:
        self._types = types
        self._server_version = server_version
        self._cache: dict[str, tuple[tuple[Any, ...], bytes, str]] = {}
        self._index: tuple[tuple[tuple[str, str], ...], bytes] | None = None

    def invalidate(self) -> None:
        self._cache.clear()
        self._index = None

    def _served(self, types: Iterable[ResourceType] | None) -> dict[str, list[ResourceType]]:
        if types is None:
            if self._types is None:
                raise TypeError("OpenAPIDocuments needs the served types")
            types = self._types()
        by_path: dict[str, list[ResourceType]] = {}
        for rt in types:
            by_path.setdefault(gv_path(rt.group, rt.version), []).append(rt)
        return dict(sorted(by_path.items(), key=lambda kv: (_group_rank(kv[1][0].group), kv[0])))

    def _entry(self, path: str, types: list[ResourceType]) -> tuple[bytes, str]:
        # Holding the ResourceTypes keeps their schema dicts alive, so ids stay unique.
        fingerprint = tuple((rt, id(rt.schema)) for rt in types)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == fingerprint:
            return cached[1], cached[2]
        rt = types[0]
        body = _serialize(group_version_document(rt.group, rt.version, types, self._server_version))
        digest = document_hash(body)
        self._cache[path] = (fingerprint, body, digest)
        return body, digest

    @staticmethod
    def normalize(path: str) -> str:
        """`/openapi/v3/apis/apps/v1?hash=..` -> `apis/apps/v1`."""
        path = path.split("?", 1)[0].strip("/")
        return path.removeprefix("openapi/v3").strip("/")

    def get(self, path: str, types: Iterable[ResourceType] | None = None) -> bytes | None:
        """The document for a path like `apis/apps/v1`; None if that GV is not served."""
        key = self.normalize(path)
        served = self._served(types).get(key)
        return self._entry(key, served)[0] if served else None

    def digest(self, path: str, types: Iterable[ResourceType] | None = None) -> str | None:
        """The document's hash (fit for an ETag); None if that GV is not served."""
        key = self.normalize(path)
        served = self._served(types).get(key)
        return self._entry(key, served)[1] if served else None

    def index_bytes(self, types: Iterable[ResourceType] | None = None) -> bytes:
        """`/openapi/v3`, each entry carrying its document's current hash."""
        served = self._served(types)
        for stale in set(self._cache) - set(served):
            del self._cache[stale]
        digests = tuple((path, self._entry(path, gv)[1]) for path, gv in served.items())
        if self._index is None or self._index[0] != digests:
            self._index = (digests, _serialize(_index(dict(digests))))
        return self._index[1]
