"""An async Kubernetes API client: CRUD, patch, server-side apply and watch over JSON.

Objects are plain dicts, or pydantic models whose class names its kind with the
ClassVars `API_VERSION` and `KIND`. The client keeps two keep-alive aiohttp sessions
(one for requests, one for long-lived watches, so watches never starve requests of
connections), resolves kinds through a cached `RESTMapper`, and turns every non-2xx
answer into the matching `ApiError` subclass. It is built for throughput: no
discovery per request, no per-request header building, `json` straight on bytes.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Literal, TypeAlias, TypeVar, cast, overload
from urllib.parse import urlencode

import aiohttp
from pydantic import BaseModel

from controller.config import ClientConfig
from controller.errors import ApiError, api_error, status_error
from controller.restmapper import Resource, RESTMapper

log = logging.getLogger(__name__)

Obj: TypeAlias = dict[str, Any]
KindRef: TypeAlias = tuple[str, str]  # (apiVersion, kind), e.g. ("apps/v1", "Deployment")
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
PatchType: TypeAlias = Literal["merge", "json", "strategic", "apply"]
PropagationPolicy: TypeAlias = Literal["Foreground", "Background", "Orphan"]

JSON = "application/json"
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",  # JSON is YAML, so we send JSON
}
USER_AGENT = "controller-python/0.1"
_NO_BODY = ""  # header-set key for requests without a body


@dataclass(slots=True)
class ObjectList(Generic[T]):
    """One list response: the items plus what is needed to page or to start a watch."""

    items: list[T]
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """ADDED, MODIFIED, DELETED or BOOKMARK with its object (ERROR is raised instead)."""

    type: str
    object: Obj


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _kind_ref(kind: KindRef | type[BaseModel]) -> tuple[str, str, type[BaseModel] | None]:
    if isinstance(kind, tuple):
        return kind[0], kind[1], None
    cls = cast(Any, kind)
    try:
        return cls.API_VERSION, cls.KIND, kind
    except AttributeError:
        raise TypeError(
            f"{kind!r} is neither an (apiVersion, kind) pair nor a model with API_VERSION and KIND"
        ) from None


def _encode(obj: Obj | BaseModel) -> tuple[Obj, type[BaseModel] | None]:
    """The wire dict of an object, and its model class if it was a model."""
    if isinstance(obj, dict):
        return obj, None
    if isinstance(obj, BaseModel):
        cls = type(obj)
        body = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
        api_version = getattr(cls, "API_VERSION", None)
        kind = getattr(cls, "KIND", None)
        if api_version is not None:
            body.setdefault("apiVersion", api_version)
        if kind is not None:
            body.setdefault("kind", kind)
        return body, cls
    raise TypeError(f"expected a dict or a pydantic model, got {type(obj).__name__}")


def _identity(body: Obj) -> tuple[str, str, Obj]:
    try:
        return body["apiVersion"], body["kind"], body.get("metadata") or {}
    except KeyError as exc:
        raise ValueError(f"object has no {exc.args[0]}: cannot tell its resource") from None


def _name_of(meta: Obj) -> str:
    name = meta.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    return str(name)


def _common_params(field_manager: str | None, dry_run: bool) -> builtins.list[tuple[str, str]]:
    params: builtins.list[tuple[str, str]] = []
    if field_manager:
        params.append(("fieldManager", field_manager))
    if dry_run:
        params.append(("dryRun", "All"))
    return params


class Client:
    """Async CRUD/patch/apply/watch against one API server; create with `connect()`."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        connection_limit: int = 100,
        request_timeout: float = 60.0,
        user_agent: str = USER_AGENT,
        mapper: RESTMapper | None = None,
    ) -> None:
        """Must run inside the event loop; prefer `await Client.connect(...)`."""
        self.config = config
        self.default_namespace = config.namespace
        self._server = config.server
        self._request_timeout = request_timeout
        tls = config.ssl_context()
        base_headers = {"Accept": JSON, "User-Agent": user_agent}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=tls if tls is not None else True, limit=connection_limit, limit_per_host=0
            ),
            timeout=aiohttp.ClientTimeout(total=request_timeout),
            headers=base_headers,
            trust_env=False,
        )
        self._watch_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=tls if tls is not None else True, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=request_timeout),
            headers=base_headers,
            trust_env=False,
        )
        self._extra: dict[str, Any] = {}
        if config.proxy:
            self._extra["proxy"] = config.proxy
        if config.tls_server_name:
            self._extra["server_hostname"] = config.tls_server_name
        self._headers: dict[str, dict[str, str]] = {}
        self._set_authorization(None)
        self._auth_deadline: float | None = 0.0  # due at once: the first request fetches it
        self._warned: set[str] = set()
        self.mapper = mapper if mapper is not None else RESTMapper(self._get_json)

    @classmethod
    async def connect(
        cls,
        config: ClientConfig | None = None,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        connection_limit: int = 100,
        request_timeout: float = 60.0,
        user_agent: str = USER_AGENT,
    ) -> Client:
        """A client for `config`, or for the kubeconfig/in-cluster settings `ClientConfig.load` finds."""
        if config is None:
            config = await ClientConfig.load(kubeconfig, context)
        client = cls(
            config,
            connection_limit=connection_limit,
            request_timeout=request_timeout,
            user_agent=user_agent,
        )
        try:
            await client._refresh_authorization()
        except BaseException:
            await client.close()
            raise
        return client

    async def close(self) -> None:
        await self._session.close()
        await self._watch_session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- transport

    def _set_authorization(self, header: str | None) -> None:
        """Prebuilds the per-content-type header dicts so requests only look one up."""
        auth = {"Authorization": header} if header else {}
        content_types = {JSON, *PATCH_CONTENT_TYPES.values(), *self._headers}
        content_types.discard(_NO_BODY)
        headers = {_NO_BODY: auth}
        for content_type in content_types:
            headers[content_type] = {**auth, "Content-Type": content_type}
        self._headers = headers

    async def _refresh_authorization(self) -> None:
        config = self.config
        if not config.refreshes_auth:
            self._auth_deadline = None
            self._set_authorization(await config.authorization())
            return
        # Push the deadline first: concurrent requests keep the current header meanwhile.
        self._auth_deadline = time.monotonic() + config.auth_refresh_interval
        try:
            header = await config.authorization()
        except BaseException:
            self._auth_deadline = 0.0  # try again on the next request
            raise
        self._set_authorization(header)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | builtins.list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = JSON,
    ) -> Any:
        """Any API call by path (e.g. `/version`, a subresource POST); parsed JSON back.

        `body` is sent as is if bytes or str, else as JSON.
        """
        query = urlencode(params) if params else ""
        if body is None or isinstance(body, bytes):
            data = body
        else:
            data = body.encode() if isinstance(body, str) else _dumps(body)
        if data is None:
            content_type = _NO_BODY
        elif content_type not in self._headers:
            auth = self._headers[_NO_BODY]
            self._headers[content_type] = {**auth, "Content-Type": content_type}
        raw = await self._send(method, path, query, data, content_type)
        return json.loads(raw) if raw else None

    async def read_text(
        self, path: str, *, params: Mapping[str, str] | builtins.list[tuple[str, str]] | None = None
    ) -> str:
        """A GET whose answer is text rather than JSON, e.g. a pod's `/log` subresource."""
        query = urlencode(params) if params else ""
        raw = await self._send("GET", path, query, None, _NO_BODY)
        return raw.decode("utf-8", errors="replace")

    async def _get_json(self, path: str) -> Any:
        return json.loads(await self._send("GET", path, "", None, _NO_BODY))

    async def _send(
        self, method: str, path: str, query: str, body: bytes | None, content_type: str
    ) -> bytes:
        """One request; the raw body of a 2xx answer, else the mapped `ApiError` raised."""
        deadline = self._auth_deadline
        if deadline is not None and time.monotonic() >= deadline:
            await self._refresh_authorization()
        url = f"{self._server}{path}?{query}" if query else self._server + path
        retried = False
        while True:
            async with self._session.request(
                method, url, data=body, headers=self._headers[content_type], **self._extra
            ) as response:
                data = await response.read()
                status = response.status
                if 200 <= status < 300:
                    if "Warning" in response.headers:
                        self._log_warnings(response.headers.getall("Warning"))
                    return data
                if status == 401 and not retried and self.config.refreshes_auth:
                    retried = True  # the credential may just have rotated
                else:
                    raise api_error(status, data, response.headers)
            await self._refresh_authorization()

    def _log_warnings(self, warnings: builtins.list[str]) -> None:
        for warning in warnings:
            if warning not in self._warned:
                if len(self._warned) < 1000:
                    self._warned.add(warning)
                log.warning("API server warning: %s", warning)

    async def _resource(self, api_version: str, kind: str) -> Resource:
        found = self.mapper.cached(api_version, kind)
        return found if found is not None else await self.mapper.resource(api_version, kind)

    def _namespace(self, resource: Resource, namespace: str | None, meta: Obj | None) -> str | None:
        if not resource.namespaced:
            return None
        if namespace:
            return namespace
        if meta:
            own = meta.get("namespace")
            if own:
                return str(own)
        return self.default_namespace

    async def resource(self, kind: KindRef | type[BaseModel]) -> Resource:
        """The resource (plural, scope, subresources) a kind maps to, from discovery."""
        api_version, kind_name, _ = _kind_ref(kind)
        return await self._resource(api_version, kind_name)

    # ---- reads

    @overload
    async def get(self, kind: type[M], name: str, namespace: str | None = None) -> M: ...
    @overload
    async def get(self, kind: KindRef, name: str, namespace: str | None = None) -> Obj: ...
    async def get(
        self, kind: KindRef | type[BaseModel], name: str, namespace: str | None = None
    ) -> Any:
        """One object; `namespace=None` means the default namespace for namespaced kinds."""
        api_version, kind_name, model = _kind_ref(kind)
        if not name:
            raise ValueError("get needs a name")
        resource = await self._resource(api_version, kind_name)
        path = resource.path(self._namespace(resource, namespace, None), name)
        data = json.loads(await self._send("GET", path, "", None, _NO_BODY))
        return model.model_validate(data) if model is not None else data

    @overload
    async def list(
        self,
        kind: type[M],
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ObjectList[M]: ...
    @overload
    async def list(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ObjectList[Obj]: ...
    async def list(
        self,
        kind: KindRef | type[BaseModel],
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ObjectList[Any]:
        """One page of objects; `namespace=None` lists all namespaces.

        Items get `apiVersion`/`kind` filled in (the server omits them for built-ins), so
        each item stands alone like an object from `get`.
        """
        api_version, kind_name, model = _kind_ref(kind)
        resource = await self._resource(api_version, kind_name)
        params: builtins.list[tuple[str, str]] = []
        if label_selector:
            params.append(("labelSelector", label_selector))
        if field_selector:
            params.append(("fieldSelector", field_selector))
        if limit:
            params.append(("limit", str(limit)))
        if continue_token:
            params.append(("continue", continue_token))
        if resource_version:
            params.append(("resourceVersion", resource_version))
        if resource_version_match:
            params.append(("resourceVersionMatch", resource_version_match))
        query = urlencode(params) if params else ""
        data = json.loads(await self._send("GET", resource.path(namespace), query, None, _NO_BODY))
        meta = data.get("metadata") or {}
        items: builtins.list[Any] = data.get("items") or []
        for item in items:
            if "kind" not in item:
                item["kind"] = kind_name
                item["apiVersion"] = api_version
        if model is not None:
            items = [model.model_validate(item) for item in items]
        return ObjectList(
            items,
            str(meta.get("resourceVersion", "")),
            str(meta.get("continue", "")),
            meta.get("remainingItemCount"),
        )

    @overload
    async def list_all(
        self,
        kind: type[M],
        namespace: str | None = None,
        *,
        page_size: int = 500,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ObjectList[M]: ...
    @overload
    async def list_all(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        page_size: int = 500,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ObjectList[Obj]: ...
    async def list_all(
        self,
        kind: KindRef | type[BaseModel],
        namespace: str | None = None,
        *,
        page_size: int = 500,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ObjectList[Any]:
        """Every object, following continue tokens; one consistent snapshot's version."""
        items: builtins.list[Any] = []
        token = ""
        snapshot = ""
        while True:
            page = await self.list(
                cast(Any, kind),
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_token=token,
                # The continue token pins the snapshot; the server refuses both together.
                resource_version="" if token else resource_version,
                resource_version_match="" if token else resource_version_match,
            )
            items.extend(page.items)
            snapshot = snapshot or page.resource_version
            token = page.continue_token
            if not token:
                return ObjectList(items, snapshot)

    # ---- writes

    @overload
    async def create(
        self, obj: M, *, field_manager: str | None = None, dry_run: bool = False
    ) -> M: ...
    @overload
    async def create(
        self, obj: Obj, *, field_manager: str | None = None, dry_run: bool = False
    ) -> Obj: ...
    async def create(
        self, obj: Obj | BaseModel, *, field_manager: str | None = None, dry_run: bool = False
    ) -> Any:
        """POSTs the object into its own namespace (or the default one)."""
        body, model = _encode(obj)
        api_version, kind, meta = _identity(body)
        resource = await self._resource(api_version, kind)
        path = resource.path(self._namespace(resource, None, meta))
        params = _common_params(field_manager, dry_run)
        query = urlencode(params) if params else ""
        data = json.loads(await self._send("POST", path, query, _dumps(body), JSON))
        return model.model_validate(data) if model is not None else data

    @overload
    async def update(
        self, obj: M, *, field_manager: str | None = None, dry_run: bool = False
    ) -> M: ...
    @overload
    async def update(
        self, obj: Obj, *, field_manager: str | None = None, dry_run: bool = False
    ) -> Obj: ...
    async def update(
        self, obj: Obj | BaseModel, *, field_manager: str | None = None, dry_run: bool = False
    ) -> Any:
        """PUTs the whole object; its metadata.resourceVersion makes it fail with Conflict if stale."""
        return await self._put(obj, "", field_manager, dry_run)

    @overload
    async def update_status(
        self, obj: M, *, field_manager: str | None = None, dry_run: bool = False
    ) -> M: ...
    @overload
    async def update_status(
        self, obj: Obj, *, field_manager: str | None = None, dry_run: bool = False
    ) -> Obj: ...
    async def update_status(
        self, obj: Obj | BaseModel, *, field_manager: str | None = None, dry_run: bool = False
    ) -> Any:
        """PUTs the status subresource (only `.status` changes; spec edits are ignored)."""
        return await self._put(obj, "status", field_manager, dry_run)

    async def _put(
        self, obj: Obj | BaseModel, subresource: str, field_manager: str | None, dry_run: bool
    ) -> Any:
        body, model = _encode(obj)
        api_version, kind, meta = _identity(body)
        resource = await self._resource(api_version, kind)
        path = resource.path(self._namespace(resource, None, meta), _name_of(meta), subresource)
        params = _common_params(field_manager, dry_run)
        query = urlencode(params) if params else ""
        data = json.loads(await self._send("PUT", path, query, _dumps(body), JSON))
        return model.model_validate(data) if model is not None else data

    @overload
    async def patch(
        self,
        kind: type[M],
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> M: ...
    @overload
    async def patch(
        self,
        kind: KindRef,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj: ...
    async def patch(
        self,
        kind: KindRef | type[BaseModel],
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Any:
        """PATCHes with the given patch type; `patch` is JSON-able, a model, or raw bytes/str.

        `force` (take over conflicting fields) only exists for server-side apply.
        """
        api_version, kind_name, model = _kind_ref(kind)
        if not name:
            raise ValueError("patch needs a name")
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(f"unknown patch type {patch_type!r}")
        if force and patch_type != "apply":
            raise ValueError("force is only meaningful for apply patches")
        if isinstance(patch, bytes):
            body = patch
        elif isinstance(patch, str):
            body = patch.encode()
        elif isinstance(patch, BaseModel):
            body = _dumps(_encode(patch)[0])
        else:
            body = _dumps(patch)
        resource = await self._resource(api_version, kind_name)
        path = resource.path(self._namespace(resource, namespace, None), name, subresource or "")
        return await self._patch(path, body, content_type, field_manager, force, dry_run, model)

    async def _patch(
        self,
        path: str,
        body: bytes,
        content_type: str,
        field_manager: str | None,
        force: bool,
        dry_run: bool,
        model: type[BaseModel] | None,
    ) -> Any:
        params = _common_params(field_manager, dry_run)
        if force:
            params.append(("force", "true"))
        query = urlencode(params) if params else ""
        data = json.loads(await self._send("PATCH", path, query, body, content_type))
        return model.model_validate(data) if model is not None else data

    @overload
    async def apply(
        self,
        obj: M,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> M: ...
    @overload
    async def apply(
        self,
        obj: Obj,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj: ...
    async def apply(
        self,
        obj: Obj | BaseModel,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Any:
        """Server-side apply: the object states the fields `field_manager` owns.

        Without `force`, fields owned by another manager with a different value raise
        `Conflict`; with it, they are taken over.
        """
        if not field_manager:
            raise ValueError("server-side apply needs a field manager")
        body, model = _encode(obj)
        api_version, kind, meta = _identity(body)
        resource = await self._resource(api_version, kind)
        path = resource.path(
            self._namespace(resource, None, meta), _name_of(meta), subresource or ""
        )
        return await self._patch(
            path, _dumps(body), PATCH_CONTENT_TYPES["apply"], field_manager, force, dry_run, model
        )

    async def delete(
        self,
        kind: KindRef | type[BaseModel],
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: PropagationPolicy | None = None,
        preconditions: Obj | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Deletes one object; returns what the server answered (the object or a Status).

        `preconditions` ({"uid": ..., "resourceVersion": ...}) makes the delete fail with
        Conflict if the object was replaced or changed meanwhile.
        """
        api_version, kind_name, _ = _kind_ref(kind)
        if not name:
            raise ValueError("delete needs a name")
        resource = await self._resource(api_version, kind_name)
        path = resource.path(self._namespace(resource, namespace, None), name)
        body = _delete_options(propagation_policy, preconditions, grace_period_seconds)
        query = "dryRun=All" if dry_run else ""
        raw = await self._send("DELETE", path, query, body, JSON if body else _NO_BODY)
        result: Obj = json.loads(raw)
        return result

    async def delete_collection(
        self,
        kind: KindRef | type[BaseModel],
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        propagation_policy: PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Deletes every matching object (in one namespace, or all for `None`)."""
        api_version, kind_name, _ = _kind_ref(kind)
        resource = await self._resource(api_version, kind_name)
        path = resource.path(namespace)
        params: builtins.list[tuple[str, str]] = []
        if label_selector:
            params.append(("labelSelector", label_selector))
        if field_selector:
            params.append(("fieldSelector", field_selector))
        if dry_run:
            params.append(("dryRun", "All"))
        query = urlencode(params) if params else ""
        body = _delete_options(propagation_policy, None, grace_period_seconds)
        raw = await self._send("DELETE", path, query, body, JSON if body else _NO_BODY)
        result: Obj = json.loads(raw)
        return result

    # ---- watch

    async def watch(
        self,
        kind: KindRef | type[BaseModel],
        namespace: str | None = None,
        *,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
        send_initial_events: bool | None = None,
    ) -> AsyncGenerator[WatchEvent, None]:
        """Change events, in order, until the server closes the stream.

        Close it early with `aclose()` (or `contextlib.aclosing`) to free the connection.

        An ERROR event is raised as its `ApiError` (`Gone` when `resource_version` is
        older than the server's history: relist). A connection that breaks mid-stream
        also just ends the iteration: resuming from the last seen version is the fix
        either way. Without `timeout_seconds` a silently dead peer is only noticed by
        TCP, so informers should pass one.
        """
        api_version, kind_name, _ = _kind_ref(kind)
        resource = await self._resource(api_version, kind_name)
        params: builtins.list[tuple[str, str]] = [("watch", "true")]
        if resource_version:
            params.append(("resourceVersion", resource_version))
        if label_selector:
            params.append(("labelSelector", label_selector))
        if field_selector:
            params.append(("fieldSelector", field_selector))
        if allow_bookmarks:
            params.append(("allowWatchBookmarks", "true"))
        if timeout_seconds is not None:
            params.append(("timeoutSeconds", str(timeout_seconds)))
        if send_initial_events is not None:
            params.append(("sendInitialEvents", "true" if send_initial_events else "false"))
            if send_initial_events:
                params.append(("resourceVersionMatch", "NotOlderThan"))
        url = f"{self._server}{resource.path(namespace)}?{urlencode(params)}"
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._request_timeout,
            sock_read=None if timeout_seconds is None else timeout_seconds + self._request_timeout,
        )
        deadline = self._auth_deadline
        if deadline is not None and time.monotonic() >= deadline:
            await self._refresh_authorization()
        retried = False
        while True:
            async with self._watch_session.get(
                url, headers=self._headers[_NO_BODY], timeout=timeout, **self._extra
            ) as response:
                status = response.status
                if status == 401 and not retried and self.config.refreshes_auth:
                    retried = True
                elif status != 200:
                    raise api_error(status, await response.read(), response.headers)
                else:
                    async for event in _events(response):
                        yield event
                    return
            await self._refresh_authorization()


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[WatchEvent]:
    """Splits the stream into lines ourselves: aiohttp's readline caps line length, and
    one event is one whole object (up to the API server's ~1.5 MiB)."""
    content = response.content
    buffer = bytearray()
    while True:
        try:
            chunk = await content.readany()
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            log.debug("watch stream broke: %s", exc)
            return
        if not chunk:
            return
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end]
            start = end + 1
            if not line.strip():
                continue
            event = json.loads(line)
            kind = event.get("type", "")
            obj = event.get("object") or {}
            if kind == "ERROR":
                raise status_error(obj)
            yield WatchEvent(kind, obj)
        if start:
            del buffer[:start]


def _delete_options(
    propagation_policy: str | None,
    preconditions: Obj | None,
    grace_period_seconds: int | None,
) -> bytes | None:
    """A DeleteOptions body, or None when every option is the server's default.

    dryRun goes in the query instead: every server reads it there."""
    options: Obj = {}
    if propagation_policy is not None:
        options["propagationPolicy"] = propagation_policy
    if preconditions:
        options["preconditions"] = preconditions
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if not options:
        return None
    return _dumps({"kind": "DeleteOptions", "apiVersion": "v1", **options})


__all__ = [
    "PATCH_CONTENT_TYPES",
    "ApiError",
    "Client",
    "KindRef",
    "Obj",
    "ObjectList",
    "PatchType",
    "PropagationPolicy",
    "WatchEvent",
]
