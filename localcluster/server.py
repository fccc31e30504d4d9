"""The HTTP face of the local cluster: Kubernetes REST paths onto the registry.

Everything protocol-shaped lives here — URL parsing, authentication, content types,
`Accept` negotiation (plain JSON, `Table`, `PartialObjectMetadata`), `Warning` headers,
watch streaming — so `registry.py` stays about API semantics alone.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from aiohttp import web

from localcluster import discovery, rbac, table, tokens
from localcluster.catalog import Catalog
from localcluster.errors import (
    Cause,
    StatusError,
    bad_request,
    internal,
    invalid,
    method_not_allowed,
    not_found,
    unauthorized,
)
from localcluster.openapi import OpenAPIDocuments
from localcluster.protobuf import PROTOBUF, decode_object
from localcluster.registry import (
    APPLY_PATCH,
    APPLY_PATCH_CBOR,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    Call,
    ListOptions,
    Registry,
)
from localcluster.resources import ResourceType
from localcluster.storage import Store
from localcluster.watch import Watch, WatchOptions

log = logging.getLogger(__name__)
Obj = dict[str, Any]

VERSION_INFO = {
    "major": "1",
    "minor": "36",
    "emulationMajor": "1",
    "emulationMinor": "36",
    "gitVersion": "v1.36.0-localcluster",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}
_PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_MAX_BODY = 3 * 1024 * 1024  # etcd's request limit, which kube-apiserver inherits

# Serves a pod's container log: (pod, query) -> an async iterator of chunks, or raises StatusError.
LogProvider = Callable[[Obj, dict[str, str]], Awaitable[web.StreamResponse | bytes]]


@dataclass
class Target:
    """A parsed resource URL."""

    rt: ResourceType
    namespace: str
    name: str
    subresource: str


class APIServer:
    def __init__(
        self,
        store: Store,
        *,
        token: str,
        port: int,
        bookmark_interval: float = 5.0,
        service_account_tokens: tokens.Tokens | None = None,
    ) -> None:
        self.catalog = Catalog()
        self.registry = Registry(store, self.catalog)
        # Without a key from the data dir, tokens are signed with a key that lives in memory.
        self.tokens = service_account_tokens or tokens.Tokens(store)
        self.authorizer = rbac.Authorizer(store.items)
        self.openapi = OpenAPIDocuments(self.catalog.all)
        self.registry.on_types_changed.append(self.openapi.invalidate)
        self._token = token
        self.port = port
        self._bookmark_interval = bookmark_interval
        self.log_provider: LogProvider | None = None
        self.ready = False

    def app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[self._errors])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # ---- middleware

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            user = self._authenticate(request)
            if user is not None:
                request["user"] = user
                self._authorize(request, user)
            elif request.path not in _PUBLIC_PATHS:
                raise unauthorized()
            return await handler(request)
        except StatusError as exc:
            return _status_response(exc)
        except web.HTTPException as exc:  # aiohttp's own refusals (e.g. a body over the limit)
            reason = "RequestEntityTooLarge" if exc.status == 413 else exc.reason.replace(" ", "")
            return _status_response(StatusError(exc.status, reason, exc.text or exc.reason))
        except Exception as exc:  # an unexpected bug must still answer with a Status
            log.exception("request failed: %s %s", request.method, request.path)
            return _status_response(internal(f"{type(exc).__name__}: {exc}"))

    def _authorize(self, request: web.Request, user: tokens.UserInfo) -> None:
        """RBAC for every authenticated request (the admin is in system:masters)."""
        attrs = rbac.request_attributes(
            request.method, request.path, request.query, user.username, user.groups
        )
        allowed, reason = self.authorizer.authorize(attrs)
        if not allowed:
            raise rbac.forbidden_error(attrs, reason)

    def _authenticate(self, request: web.Request) -> tokens.UserInfo | None:
        """The admin (the kubeconfig's token) or a service account; None if neither."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if hmac.compare_digest(token.encode(), self._token.encode()):
            return tokens.ADMIN
        return self.tokens.verify(token)

    # ---- routing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/livez", "/readyz"):
            if path == "/readyz" and not self.ready:
                return web.Response(status=503, text="not ready")
            return web.Response(text="ok")
        if path == "/version":
            return _json(VERSION_INFO)
        if parts[:1] == ["openapi"]:
            return self._openapi(parts)
        if (parts[:1] == ["api"] and len(parts) <= 2) or (
            parts[:1] == ["apis"] and len(parts) <= 3
        ):
            return self._discovery(request, parts)
        if parts[:2] == ["api", "v1"]:
            return await self._resource(request, "", "v1", parts[2:])
        if parts[:1] == ["apis"] and len(parts) > 3:
            return await self._resource(request, parts[1], parts[2], parts[3:])
        raise StatusError(404, "NotFound", "the server could not find the requested resource", {})

    def _openapi(self, parts: list[str]) -> web.Response:
        if parts == ["openapi", "v3"]:
            return web.Response(body=self.openapi.index_bytes(), content_type="application/json")
        if len(parts) > 2 and parts[1] == "v3":
            document = self.openapi.get("/".join(parts[2:]))
            if document is not None:
                return web.Response(body=document, content_type="application/json")
        raise StatusError(404, "NotFound", "the server could not find the requested resource", {})

    def _discovery(self, request: web.Request, parts: list[str]) -> web.Response:
        types = self.catalog.all()
        accept = request.headers.get("Accept", "")
        if "as=APIGroupDiscoveryList" in accept and len(parts) == 1:
            body = discovery.aggregated(types, legacy=parts[0] == "api")
            return _json(
                body,
                content_type="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            )
        if parts == ["api"]:
            return _json(discovery.api_versions(f"127.0.0.1:{self.port}"))
        if parts == ["apis"]:
            return _json(discovery.api_group_list(types))
        if parts == ["api", "v1"]:
            return _json(discovery.api_resource_list(types, "", "v1") or {})
        group = parts[1]
        if len(parts) == 2:
            found = discovery.api_group(types, group)
            if found is None:
                raise StatusError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            return _json(found)
        listed = discovery.api_resource_list(types, group, parts[2])
        if listed is None:
            raise StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        return _json(listed)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace = ""
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES)
        ):
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        rt = self.catalog.lookup(group, version, plural)
        if rt is None or len(rest) > 3 or (namespace and not rt.namespaced):
            raise StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and subresource not in rt.subresources:
            raise StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        return Target(rt, namespace, name, subresource)

    # ---- resources

    async def _resource(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        if not rest:
            raise StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        target = self._target(group, version, rest)
        query = request.query
        call = Call(
            target.rt,
            namespace=target.namespace,
            name=target.name,
            subresource=target.subresource,
            dry_run="All" in query.getall("dryRun", []),
            field_manager=query.get("fieldManager", ""),
            field_validation=_field_validation(query.get("fieldValidation", "")),
            force=query.get("force", "") in ("true", "1"),
            user_agent=request.headers.get("User-Agent", ""),
            user=request.get("user"),
        )
        method = request.method
        if (
            target.rt.group == "authorization.k8s.io"
            and target.rt.kind == "SelfSubjectAccessReview"
        ):
            return await self._self_subject_access_review(request, call)
        if target.subresource == "log":
            return await self._pod_log(call, request)
        if target.subresource == "token":
            if method != "POST":
                raise method_not_allowed(
                    f"the server does not allow this method on the requested resource: {method}"
                )
            return await self._token_request(call, request)
        if method == "GET":
            if not target.name:
                if _truthy(query.get("watch", "")):
                    return await self._watch(request, call)
                return self._list(request, call)
            return self._respond(request, call, self.registry.get(call))
        if method == "POST":
            if target.name:
                raise method_not_allowed(f"POST is not allowed on {target.rt.plural}/{target.name}")
            new_object = await self.registry.create(call, await _body(request))
            return self._respond(request, call, new_object, status=201)
        if method == "PUT":
            self._need_name(call, method)
            return self._respond(
                request, call, await self.registry.update(call, await _body(request))
            )
        if method == "PATCH":
            self._need_name(call, method)
            content_type = request.content_type
            obj, created = await self.registry.patch(
                call, content_type, await _body(request, patch=True)
            )
            return self._respond(request, call, obj, status=201 if created else 200)
        if method == "DELETE":
            options = await _delete_options(request)
            if not target.name:
                deleted = await self.registry.delete_collection(call, options, _list_options(query))
                return self._respond_list(
                    request, call, deleted.items, deleted.resource_version, "", None
                )
            result = await self.registry.delete(call, options)
            if result.object is not None:
                return self._respond(request, call, result.object)
            assert result.status is not None
            return _json(result.status, warnings=call.warnings)
        raise method_not_allowed(
            f"the server does not allow this method on the requested resource: {method}"
        )

    async def _token_request(self, call: Call, request: web.Request) -> web.Response:
        """`POST serviceaccounts/<name>/token`: a TokenRequest answered with a signed token."""
        body = await _body(request)
        if not isinstance(body, dict):
            raise bad_request("the TokenRequest body is not an object")
        if body.get("kind", "TokenRequest") != "TokenRequest" or body.get(
            "apiVersion", "authentication.k8s.io/v1"
        ) not in ("authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"):
            raise bad_request(
                f"the body of the request was {body.get('apiVersion')}/{body.get('kind')}; "
                "expected authentication.k8s.io/v1/TokenRequest"
            )
        account = self.registry.get(Call(call.rt, namespace=call.namespace, name=call.name))
        spec = body.get("spec") or {}
        seconds = spec.get("expirationSeconds", tokens.DEFAULT_EXPIRATION_SECONDS)
        audiences = spec.get("audiences") or []
        causes: list[Cause] = []
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            causes.append(Cause("spec.expirationSeconds", f"Invalid value: {seconds!r}"))
        elif seconds < tokens.MIN_EXPIRATION_SECONDS:
            causes.append(
                Cause(
                    "spec.expirationSeconds",
                    f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
                )
            )
        elif seconds > tokens.MAX_EXPIRATION_SECONDS:
            causes.append(
                Cause(
                    "spec.expirationSeconds",
                    f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds",
                )
            )
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            causes.append(Cause("spec.audiences", "Invalid value: must be a list of strings"))
        if causes:
            raise invalid("TokenRequest", "authentication.k8s.io", call.name, causes)
        bound = spec.get("boundObjectRef")
        pod: tokens.BoundPod | None = None
        if bound:
            pod = self._bound_pod(call.namespace, bound)
        issued = self.tokens.issue(
            call.namespace,
            call.name,
            str(account["metadata"].get("uid", "")),
            int(seconds),
            audiences or list(tokens.API_AUDIENCES),
            pod,
        )
        shown_spec: Obj = {
            "audiences": audiences or list(tokens.API_AUDIENCES),
            "expirationSeconds": int(seconds),
        }
        if bound:
            shown_spec["boundObjectRef"] = bound
        response = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": call.name,
                "namespace": call.namespace,
                "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": shown_spec,
            "status": {
                "token": issued.token,
                "expirationTimestamp": datetime.fromtimestamp(issued.expiration, UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
            },
        }
        return _json(response, status=201, warnings=call.warnings)

    def _bound_pod(self, namespace: str, ref: Any) -> tokens.BoundPod:
        if not isinstance(ref, dict) or ref.get("kind") != "Pod":
            kind = ref.get("kind") if isinstance(ref, dict) else ref
            raise bad_request(f"cannot bind token to object of kind {kind!r}: only Pod is served")
        name = str(ref.get("name", ""))
        pod = self.registry.store.get("pods", (namespace, name))
        if pod is None:
            raise not_found("pods", "", name)
        uid = str(pod["metadata"].get("uid", ""))
        if ref.get("uid") and ref["uid"] != uid:
            raise StatusError(
                409,
                "Conflict",
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID "
                f"in record. The object might have been deleted and then recreated",
            )
        return tokens.BoundPod(name, uid)

    @staticmethod
    def _need_name(call: Call, method: str) -> None:
        if not call.name:
            raise method_not_allowed(f"{method} requires a resource name")

    def _list(self, request: web.Request, call: Call) -> web.StreamResponse:
        result = self.registry.list_objects(call, _list_options(request.query))
        return self._respond_list(
            request,
            call,
            result.items,
            result.resource_version,
            result.continue_token,
            result.remaining,
        )

    async def _watch(self, request: web.Request, call: Call) -> web.StreamResponse:
        query = request.query
        timeout = query.get("timeoutSeconds")
        initial = query.get("sendInitialEvents")
        options = WatchOptions(
            resource_version=query.get("resourceVersion", ""),
            label_selector=query.get("labelSelector", ""),
            field_selector=query.get("fieldSelector", ""),
            allow_bookmarks=_truthy(query.get("allowWatchBookmarks", "")),
            send_initial_events=None if initial is None else _truthy(initial),
            timeout_seconds=float(timeout) if timeout else None,
            bookmark_interval=self._bookmark_interval,
        )
        representation = _representation(request.headers.get("Accept", ""))
        rt = call.rt

        def render(obj: Obj, first: bool) -> Obj:
            if representation == "Table":
                shown = table.table(
                    rt,
                    [obj],
                    resource_version=obj["metadata"].get("resourceVersion", ""),
                    include_object=request.query.get("includeObject", "Metadata"),
                    now=datetime.now(UTC),
                )
                if not first:
                    shown.pop("columnDefinitions", None)
                return shown
            if representation == "PartialObjectMetadata":
                return _partial(obj)
            return obj

        watch = Watch(self.registry, call, options, render)
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await watch.run(response.write)
            await response.write_eof()
        return response

    async def _self_subject_access_review(self, request: web.Request, call: Call) -> web.Response:
        """`kubectl auth can-i`: answered from RBAC, never stored."""
        if request.method != "POST" or call.name:
            raise method_not_allowed("selfsubjectaccessreviews only accept create")
        review = await _body(request)
        if not isinstance(review, dict):
            raise bad_request("the body is not a SelfSubjectAccessReview")
        user = request.get("user") or tokens.ADMIN
        answer = self.authorizer.self_subject_access_review(
            review, user.username, list(user.groups)
        )
        answer.setdefault("apiVersion", "authorization.k8s.io/v1")
        answer.setdefault("kind", "SelfSubjectAccessReview")
        return _json(answer, status=201)

    async def _pod_log(self, call: Call, request: web.Request) -> web.StreamResponse:
        pod = self.registry.get(call)
        if self.log_provider is not None:
            result = await self.log_provider(pod, dict(request.query))
            if isinstance(result, bytes):
                return web.Response(body=result, content_type="text/plain")
            return result
        containers = [c.get("name", "") for c in pod.get("spec", {}).get("containers", [])]
        container = request.query.get("container") or (containers[0] if containers else "")
        raise bad_request(
            f'container "{container}" in pod "{call.name}" is waiting to start: ContainerCreating'
        )

    # ---- responses

    def _respond(
        self, request: web.Request, call: Call, obj: Obj, status: int = 200
    ) -> web.Response:
        representation = _representation(request.headers.get("Accept", ""))
        if representation == "Table":
            body = table.table(
                call.rt,
                [obj],
                resource_version=obj["metadata"].get("resourceVersion", ""),
                include_object=request.query.get("includeObject", "Metadata"),
                now=datetime.now(UTC),
            )
            return _json(body, status=status, warnings=call.warnings)
        if representation == "PartialObjectMetadata":
            return _json(_partial(obj), status=status, warnings=call.warnings)
        return _json(obj, status=status, warnings=call.warnings)

    def _respond_list(
        self,
        request: web.Request,
        call: Call,
        items: list[Obj],
        rv: int,
        token: str,
        remaining: int | None,
    ) -> web.Response:
        representation = _representation(request.headers.get("Accept", ""))
        rt = call.rt
        if representation == "Table":
            body = table.table(
                rt,
                items,
                resource_version=str(rv),
                include_object=request.query.get("includeObject", "Metadata"),
                now=datetime.now(UTC),
                continue_token=token,
                remaining=remaining,
            )
            return _json(body, warnings=call.warnings)
        meta: Obj = {"resourceVersion": str(rv)}
        if token:
            meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        if representation == "PartialObjectMetadata":
            return _json(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                    "items": [_partial(o) for o in items],
                },
                warnings=call.warnings,
            )
        return _json(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items},
            warnings=call.warnings,
        )


# ---- request parsing


def _truthy(value: str) -> bool:
    return value.lower() in ("true", "1")


def _field_validation(value: str) -> str:
    if value in ("", "Warn"):
        return "Warn"
    if value in ("Strict", "Ignore"):
        return value
    raise bad_request(f"fieldValidation {value} is invalid. Valid values are Strict, Warn, Ignore")


def _list_options(query: Any) -> ListOptions:
    limit_text = query.get("limit", "")
    try:
        limit = int(limit_text) if limit_text else 0
    except ValueError:
        raise bad_request(f'invalid limit "{limit_text}"') from None
    return ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=max(limit, 0),
        continue_token=query.get("continue", ""),
        resource_version=query.get("resourceVersion", ""),
        resource_version_match=query.get("resourceVersionMatch", ""),
    )


async def _body(request: web.Request, patch: bool = False) -> Any:
    raw = await request.read()
    if not raw:
        raise bad_request("the request body is empty")
    content_type = request.content_type
    if patch and content_type not in (
        JSON_PATCH,
        MERGE_PATCH,
        STRATEGIC_PATCH,
        APPLY_PATCH,
        APPLY_PATCH_CBOR,
    ):
        raise StatusError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_PATCH}",
        )
    if content_type in ("application/yaml", APPLY_PATCH):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise bad_request(f"error decoding YAML: {exc}") from None
    if content_type == PROTOBUF and not patch:
        return decode_object(raw)
    if content_type in (PROTOBUF, APPLY_PATCH_CBOR):
        raise StatusError(
            415,
            "UnsupportedMediaType",
            f"the local cluster does not decode {content_type}; send JSON",
        )
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


async def _delete_options(request: web.Request) -> Obj:
    options: Obj = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise bad_request(f"invalid DeleteOptions: {exc}") from None
            if not isinstance(parsed, dict):
                raise bad_request("invalid DeleteOptions: not an object")
            options = parsed
    query = request.query
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "gracePeriodSeconds" in query:
        options["gracePeriodSeconds"] = query["gracePeriodSeconds"]
    if "orphanDependents" in query:
        options["orphanDependents"] = _truthy(query["orphanDependents"])
    return options


def _representation(accept: str) -> str:
    """The first representation in the Accept list that the server can produce."""
    for media in accept.split(","):
        params = dict(
            (p.split("=", 1)[0].strip(), p.split("=", 1)[1].strip())
            for p in media.split(";")[1:]
            if "=" in p
        )
        base = media.split(";", 1)[0].strip()
        if base not in ("application/json", "*/*", "application/*", ""):
            continue
        wanted = params.get("as")
        if wanted is None:
            return "Object"
        if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            if wanted == "Table":
                return "Table"
            if wanted in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return "PartialObjectMetadata"
    return "Object"


def _partial(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def _json(
    body: Any,
    status: int = 200,
    content_type: str = "application/json",
    warnings: list[str] | None = None,
) -> web.Response:
    response = web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status)
    response.headers["Content-Type"] = content_type
    for warning in warnings or ():
        response.headers.add("Warning", f'299 - "{_quote_warning(warning)}"')
    return response


def _quote_warning(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _status_response(error: StatusError) -> web.Response:
    response = _json(error.to_status(), status=error.code)
    for key, value in error.headers.items():
        response.headers[key] = value
    return response


__all__ = ["APIServer", "not_found"]
