"""The REST semantics of every resource: create, read, update, patch, delete.

This is where the API conventions live — resourceVersion preconditions, generation,
the status subresource, finalizers and deletionTimestamp, field validation,
managedFields, dry runs — independent of HTTP (see `server.py`) and of storage
(`storage.py`). Custom and built-in kinds take the same path; per-kind rules come from
`strategies.py` and, for CRDs, `crds.py`.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from localcluster import builtin_schemas, crds, fieldmanager, patch, scale, schema, strategies
from localcluster.admission import Admission
from localcluster.catalog import Catalog
from localcluster.errors import (
    STALE_OBJECT,
    Cause,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    expired,
    forbidden,
    invalid,
    not_found,
    unsupported_media_type,
)
from localcluster.resources import ResourceType
from localcluster.selectors import FieldSelector, LabelSelector, supported_field_selectors
from localcluster.storage import ADDED, DELETED, MODIFIED, ObjectKey, Store, TooOld
from localcluster.tokens import UserInfo

Obj = dict[str, Any]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")  # as upstream's admission
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Fields of metadata a client can never set; the server owns them.
_SERVER_OWNED_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"


def now_rfc3339(plus_seconds: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=plus_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Call:
    """One request's target and options, as parsed from the URL and query."""

    rt: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"
    force: bool = False
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)
    user: UserInfo | None = None  # who is calling (None: the server itself)

    @property
    def manager(self) -> str:
        if self.field_manager:
            return self.field_manager
        return self.user_agent.split("/", 1)[0] or "unknown"


@dataclass
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


@dataclass
class Deleted:
    """What a DELETE answers: the object still pending finalizers, or a Success status."""

    object: Obj | None
    status: Obj | None


class Registry:
    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog
        self._ips_allocated = 0
        # Admission webhooks (None: disabled).
        self.admission: Admission | None = Admission(store)
        # Called after the set of served types changes (CRD written or removed).
        self.on_types_changed: list[Callable[[], None]] = []

    async def start(self) -> None:
        """Serves the CRDs already stored and makes sure the default namespaces exist."""
        for crd in self.store.items("customresourcedefinitions.apiextensions.k8s.io"):
            if not crd.get("metadata", {}).get("deletionTimestamp"):
                self.catalog.set_crd(crd)
        self._ips_allocated = self.store.count("services")
        namespaces = self.catalog.lookup("", "v1", "namespaces")
        assert namespaces is not None
        for name in DEFAULT_NAMESPACES:
            if self.store.get("namespaces", ("", name)) is None:
                await self.create(
                    Call(namespaces, field_manager="localcluster"), {"metadata": {"name": name}}
                )

    # ---- helpers

    @staticmethod
    def bucket(rt: ResourceType) -> str:
        return rt.group_resource

    @staticmethod
    def key(call: Call, name: str | None = None) -> ObjectKey:
        return (
            call.namespace if call.rt.namespaced else "",
            name if name is not None else call.name,
        )

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        """The stored object as the requested version shows it (conversion strategy None)."""
        if obj.get("apiVersion") == rt.api_version and obj.get("kind") == rt.kind:
            return obj
        shown = dict(obj)
        shown["apiVersion"] = rt.api_version
        shown["kind"] = rt.kind
        return shown

    def _existing(self, call: Call) -> Obj:
        obj = self.store.get(self.bucket(call.rt), self.key(call))
        if obj is None:
            raise not_found(call.rt.plural, call.rt.group, call.name)
        return obj

    def _list_keys(self, rt: ResourceType) -> patch.ListKeys:
        if rt.custom and rt.schema is not None:
            return patch.crd_list_keys(rt.schema)
        return patch.builtin_list_keys

    def _allocate_ip(self) -> str:
        self._ips_allocated += 1
        return strategies.cluster_ip(self._ips_allocated)

    # ---- reads

    def get(self, call: Call) -> Obj:
        obj = self._existing(call)
        if call.subresource == "scale":
            return scale.to_scale(call.rt, obj)
        return self.present(call.rt, obj)

    def list_objects(self, call: Call, options: ListOptions) -> ListResult:
        rt = call.rt
        labels = LabelSelector.parse(options.label_selector)
        fields = FieldSelector.parse(
            options.field_selector, supported_field_selectors(rt.kind, rt.group)
        )
        namespace = call.namespace if rt.namespaced and call.namespace else None
        start_after: tuple[str, str] | None = None
        rv = self.store.rv
        if options.continue_token:
            rv, start_after = _decode_continue(options.continue_token)
            objects = self._snapshot(rt, namespace, rv, "continue")
        elif options.resource_version and options.resource_version_match == "Exact":
            rv = _parse_rv(options.resource_version)
            objects = self._snapshot(rt, namespace, rv, "list")
        else:
            if options.resource_version not in ("", "0"):
                wanted = _parse_rv(options.resource_version)
                if wanted > self.store.rv:
                    raise StatusError(
                        504,
                        "Timeout",
                        f"Too large resource version: {wanted}, current: {self.store.rv}",
                        {
                            "causes": [
                                {
                                    "reason": "ResourceVersionTooLarge",
                                    "message": "Too large resource version",
                                }
                            ],
                            "retryAfterSeconds": 1,
                        },
                    )
            exact = fields.exact_name()
            if exact is not None and namespace is not None:
                one = self.store.get(self.bucket(rt), (namespace, exact))
                objects = [one] if one is not None else []
            else:
                objects = self.store.items(self.bucket(rt), namespace)
        selected: list[Obj] = []
        remaining = 0
        for obj in objects:
            meta = obj["metadata"]
            if start_after is not None and (meta.get("namespace", ""), meta["name"]) <= start_after:
                continue
            if not labels.matches(meta.get("labels")) or not fields.matches(obj):
                continue
            if options.limit and len(selected) >= options.limit:
                remaining += 1
                continue
            selected.append(self.present(rt, obj))
        token = ""
        if remaining:
            last = selected[-1]["metadata"]
            token = _encode_continue(rv, (last.get("namespace", ""), last["name"]))
        return ListResult(selected, rv, token, remaining if remaining else None)

    def _snapshot(self, rt: ResourceType, namespace: str | None, rv: int, why: str) -> list[Obj]:
        try:
            return self.store.snapshot_at(self.bucket(rt), namespace, rv)
        except TooOld as exc:
            if why == "continue":
                raise expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter."
                ) from exc
            raise expired(f"too old resource version: {exc.requested} ({exc.oldest})") from exc

    # ---- create

    async def create(self, call: Call, body: Any, managed_fields: list[Obj] | None = None) -> Obj:
        """Creates an object; `managed_fields` comes from server-side apply when it creates."""
        rt = call.rt
        obj = self._decode_body(call, body)
        meta = obj["metadata"]
        for owned in _SERVER_OWNED_METADATA:
            meta.pop(owned, None)
        meta.pop("resourceVersion", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choices(_NAME_SUFFIX_ALPHABET, k=5)
            )
        call.name = meta.get("name", "")
        self._check_namespace_writable(call)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.tracks_generation:
            meta["generation"] = 1
        if self.admission is not None:
            obj = await self.admission.mutate(call, "CREATE", obj, None)
            meta = obj["metadata"]
        self._validate_content(call, obj, None)
        key = self.key(call)
        if self.store.get(self.bucket(rt), key) is not None:
            raise already_exists(rt.plural, rt.group, call.name)
        if self.admission is not None:
            await self.admission.validate(call, "CREATE", obj, None)
            # Webhooks were awaited: another request may have created it meanwhile.
            if self.store.get(self.bucket(rt), key) is not None:
                raise already_exists(rt.plural, rt.group, call.name)
        if managed_fields is None:
            managed_fields = fieldmanager.update_managed_fields(
                None,
                obj,
                manager=call.manager,
                api_version=rt.api_version,
                list_keys=self._list_keys(rt),
                now=now_rfc3339(),
            )
        if managed_fields:
            meta["managedFields"] = managed_fields
        return await self._store_new(call, obj)

    async def _store_new(self, call: Call, obj: Obj) -> Obj:
        rt = call.rt
        obj["apiVersion"] = self._storage_api_version(rt)
        if call.dry_run:
            return self.present(rt, obj)
        rv = self.store.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        await self.store.write(self.bucket(rt), self.key(call), obj, rv=rv, event_type=ADDED)
        await self._after_write(rt, None, obj)
        return self.present(rt, obj)

    def _storage_api_version(self, rt: ResourceType) -> str:
        version = self.catalog.storage_version(rt)
        return f"{rt.group}/{version}" if rt.group else version

    def _decode_body(self, call: Call, body: Any) -> Obj:
        rt = call.rt
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request is not a {rt.kind} object")
        obj = copy.deepcopy(body)
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if (api_version is not None and api_version != rt.api_version) or (
            kind is not None and kind != rt.kind
        ):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: metadata must be an object'
            )
        if rt.namespaced:
            given = meta.get("namespace")
            if given and call.namespace and given != call.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = call.namespace or given or ""
            call.namespace = meta["namespace"]
        else:
            meta.pop("namespace", None)
        if call.name and meta.get("name") and meta["name"] != call.name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({call.name})"
            )
        if call.name and not meta.get("name"):
            meta["name"] = call.name
        return obj

    def _check_namespace_writable(self, call: Call) -> None:
        if not call.rt.namespaced:
            return
        if not call.namespace:
            raise bad_request(
                "the server could not find the requested resource: a namespace is required"
            )
        namespace = self.store.get("namespaces", ("", call.namespace))
        if namespace is None:
            raise not_found("namespaces", "", call.namespace)
        if namespace["metadata"].get("deletionTimestamp"):
            raise forbidden(
                f'{call.rt.plural} "{call.name}" is forbidden: unable to create new content in namespace '
                f"{call.namespace} because it is being terminated",
                call.rt.plural,
                call.rt.group,
                call.name,
            )

    def _validate_content(self, call: Call, obj: Obj, old: Obj | None) -> None:
        """Unknown fields per fieldValidation, then metadata, kind rules and schema: all causes at once."""
        rt = call.rt
        causes = schema.validate_metadata(
            obj["metadata"],
            namespaced=rt.namespaced,
            name_is_label=rt.is_namespace,
        )
        if rt.custom and rt.schema is not None:
            outcome = schema.default_prune_validate(obj, rt.schema)
            unknown = outcome.unknown_fields
            causes += outcome.causes
        else:
            unknown = builtin_schemas.unknown_fields(obj, rt)
            if unknown:
                builtin_schemas.prune_unknown(obj, rt)
        self._handle_unknown_fields(call, unknown)
        if old is None:
            causes += strategies.prepare_create(rt, obj, self._allocate_ip)
        else:
            causes += strategies.prepare_update(rt, old, obj)
        if rt.is_crd:
            causes += crds.validate(obj)
            if not causes:
                crds.set_status(obj, now_rfc3339(), old)
                self._check_crd_update(old, obj)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)

    def _handle_unknown_fields(self, call: Call, unknown: list[str]) -> None:
        if not unknown or call.field_validation == "Ignore":
            return
        rendered = [f'unknown field "{path}"' for path in unknown]
        if call.field_validation == "Strict":
            kind = call.rt.kind
            raise bad_request(
                f'{kind} in version "{call.rt.version}" cannot be handled as a {kind}: '
                f"strict decoding error: {', '.join(rendered)}"
            )
        call.warnings.extend(rendered)

    def _check_crd_update(self, old: Obj | None, new: Obj) -> None:
        if old is None:
            return
        for field_name in ("group",):
            if old["spec"].get(field_name) != new["spec"].get(field_name):
                raise invalid(
                    "CustomResourceDefinition",
                    "apiextensions.k8s.io",
                    new["metadata"]["name"],
                    [Cause(f"spec.{field_name}", "Invalid value: field is immutable")],
                )

    # ---- update and patch

    async def update(self, call: Call, body: Any) -> Obj:
        old = self._existing(call)
        if call.subresource == "scale":
            if not isinstance(body, dict):
                raise bad_request("the body of the request is not a Scale object")
            return await self._update_scale(call, old, body)
        obj = self._decode_body(call, body)
        return await self._update(call, old, obj, operation_is_apply=False)

    async def _update_scale(self, call: Call, old: Obj, new_scale: Obj) -> Obj:
        obj, causes = scale.apply_scale(call.rt, self.present(call.rt, old), new_scale)
        if causes:
            raise invalid("Scale", "autoscaling", call.name, causes)
        updated = await self._update(call, old, obj, operation_is_apply=False)
        return scale.to_scale(call.rt, updated)

    async def patch(self, call: Call, content_type: str, body: Any) -> tuple[Obj, bool]:
        """Applies a patch; returns the object and whether it was created (apply only)."""
        rt = call.rt
        bucket_key = self.key(call)
        old = self.store.get(self.bucket(rt), bucket_key)
        if content_type in (APPLY_PATCH, APPLY_PATCH_CBOR):
            return await self._apply(call, old, body)
        if old is None:
            raise not_found(rt.plural, rt.group, call.name)
        scaling = call.subresource == "scale"
        current = scale.to_scale(rt, old) if scaling else self.present(rt, old)
        if content_type == JSON_PATCH:
            patched = patch.apply_json_patch(current, body)
        elif content_type == MERGE_PATCH:
            if not isinstance(body, dict):
                raise bad_request("merge patch must be a JSON object")
            patched = patch.apply_merge_patch(current, body)
        elif content_type == STRATEGIC_PATCH:
            if rt.custom and not scaling:
                raise unsupported_media_type(content_type)
            if not isinstance(body, dict):
                raise bad_request("strategic merge patch must be a JSON object")
            patched = patch.apply_strategic_merge_patch(current, body, self._list_keys(rt))
        else:
            raise unsupported_media_type(content_type)
        if not isinstance(patched, dict):
            raise bad_request("the patched object is not a JSON object")
        # A patch is conditional only when it names a resourceVersion itself.
        patched_meta = patched.get("metadata") or {}
        if not _patch_sets_rv(content_type, body):
            patched_meta.pop("resourceVersion", None)
        if scaling:
            return await self._update_scale(call, old, patched), False
        obj = self._decode_body(call, patched)
        return await self._update(call, old, obj, operation_is_apply=False), False

    async def _apply(self, call: Call, old: Obj | None, body: Any) -> tuple[Obj, bool]:
        rt = call.rt
        if not call.field_manager:
            raise bad_request("PATCH, application/apply-patch+yaml requests require a fieldManager")
        applied = self._decode_body(call, body)
        if old is None:
            if call.subresource:
                raise not_found(rt.plural, rt.group, call.name)
            merged = fieldmanager.server_side_apply(
                None,
                applied,
                manager=call.manager,
                force=call.force,
                api_version=rt.api_version,
                list_keys=self._list_keys(rt),
                now=now_rfc3339(),
                subresource="",
            )
            managed = merged["metadata"].get("managedFields") or []
            return await self.create(call, merged, managed_fields=managed), True
        merged = fieldmanager.server_side_apply(
            self.present(rt, old),
            applied,
            manager=call.manager,
            force=call.force,
            api_version=rt.api_version,
            list_keys=self._list_keys(rt),
            now=now_rfc3339(),
            subresource=call.subresource,
        )
        if not applied["metadata"].get("resourceVersion"):
            merged["metadata"].pop("resourceVersion", None)
        return await self._update(call, old, merged, operation_is_apply=True), False

    async def _update(self, call: Call, old: Obj, obj: Obj, *, operation_is_apply: bool) -> Obj:
        rt = call.rt
        old_meta = old["metadata"]
        given_rv = obj["metadata"].get("resourceVersion")
        if given_rv and given_rv != old_meta.get("resourceVersion"):
            raise conflict(rt.plural, rt.group, call.name, STALE_OBJECT)
        if self.admission is not None:
            obj = await self.admission.mutate(call, "UPDATE", obj, self.present(rt, old))
        meta = obj["metadata"]
        if call.subresource == "status":
            obj = _only_status(old, obj)
            meta = obj["metadata"]
        elif call.subresource == "finalize":
            obj = _only_spec_finalizers(old, obj)
            meta = obj["metadata"]
        elif rt.has_status:
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        for owned in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        if call.subresource not in ("status", "finalize"):
            self._validate_content(call, obj, old)
        elif rt.custom and rt.schema is not None:
            outcome = schema.default_prune_validate(obj, rt.schema)
            self._handle_unknown_fields(call, outcome.unknown_fields)
            if outcome.causes:
                raise invalid(rt.kind, rt.group, call.name, list(outcome.causes))
        if old_meta.get("deletionTimestamp") and set(meta.get("finalizers") or ()) - set(
            old_meta.get("finalizers") or ()
        ):
            raise forbidden(
                f'{rt.plural} "{call.name}" is forbidden: no new finalizers can be added if the object is being deleted',
                rt.plural,
                rt.group,
                call.name,
            )
        if rt.tracks_generation and _spec_changed(old, obj):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if not operation_is_apply:
            managed = fieldmanager.update_managed_fields(
                self.present(rt, old),
                obj,
                manager=call.manager,
                api_version=rt.api_version,
                list_keys=self._list_keys(rt),
                now=now_rfc3339(),
                subresource=call.subresource,
            )
            if managed:
                meta["managedFields"] = managed
            else:
                meta.pop("managedFields", None)
        if self.admission is not None:
            await self.admission.validate(call, "UPDATE", obj, self.present(rt, old))
            # Webhooks were awaited: a write that landed meanwhile must not be overwritten.
            if self.store.get(self.bucket(rt), self.key(call)) is not old:
                raise conflict(rt.plural, rt.group, call.name, STALE_OBJECT)
        obj["apiVersion"] = self._storage_api_version(rt)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if _same_ignoring_times(old, obj):
            return self.present(rt, old)  # a no-op update writes nothing, like upstream
        if call.dry_run:
            return self.present(rt, obj)
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not _namespace_finalizers(rt, obj)
            # A pod still in its grace period goes when its node deletes it, not on a write.
            and not meta.get("deletionGracePeriodSeconds")
        ):
            await self._remove(call, obj)
            return self.present(rt, obj)
        rv = self.store.next_rv()
        meta["resourceVersion"] = str(rv)
        await self.store.write(self.bucket(rt), self.key(call), obj, rv=rv, event_type=MODIFIED)
        await self._after_write(rt, old, obj)
        return self.present(rt, obj)

    # ---- delete

    async def delete(self, call: Call, options: Obj) -> Deleted:
        rt = call.rt
        old = self._existing(call)
        if rt.is_namespace and call.name in _UNDELETABLE_NAMESPACES:
            raise forbidden(
                f'namespaces "{call.name}" is forbidden: this namespace may not be deleted',
                rt.plural,
                rt.group,
                call.name,
            )
        meta = old["metadata"]
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise conflict(
                rt.plural,
                rt.group,
                call.name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {meta.get('uid')}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get(
            "resourceVersion"
        ):
            raise conflict(
                rt.plural,
                rt.group,
                call.name,
                f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        if policy not in (None, "Foreground", "Background", "Orphan"):
            raise invalid(
                "DeleteOptions",
                "",
                "",
                [
                    Cause(
                        "propagationPolicy",
                        f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
                        "FieldValueNotSupported",
                    )
                ],
            )
        if self.admission is not None:
            await self.admission.delete(call, self.present(rt, old), options)
            if self.store.get(self.bucket(rt), self.key(call)) is not old:
                raise conflict(rt.plural, rt.group, call.name, STALE_OBJECT)
        finalizers = list(meta.get("finalizers") or ())
        if (
            policy == "Foreground"
            and self._has_dependents(meta["uid"])
            and "foregroundDeletion" not in finalizers
        ):
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and self._has_dependents(meta["uid"]) and "orphan" not in finalizers:
            finalizers.append("orphan")
        grace = _pod_grace_period(rt, old, options)
        graceful = _namespace_finalizers(rt, old) or bool(finalizers) or grace > 0
        if rt.is_crd:
            return await self._delete_crd(call, old, options)
        if not graceful:
            if call.dry_run:
                return Deleted(None, _success(rt, old))
            await self._remove(call, old)
            return Deleted(None, _success(rt, old))
        updated = copy.deepcopy(old)
        updated_meta = updated["metadata"]
        if not updated_meta.get("deletionTimestamp"):
            # A running pod gets its grace period: the node stops it, then deletes it.
            updated_meta["deletionTimestamp"] = now_rfc3339(grace)
            updated_meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            updated_meta["finalizers"] = finalizers
        if rt.is_namespace:
            updated.setdefault("status", {})["phase"] = "Terminating"
        if updated == old or call.dry_run:
            return Deleted(self.present(rt, updated), None)
        rv = self.store.next_rv()
        updated_meta["resourceVersion"] = str(rv)
        await self.store.write(self.bucket(rt), self.key(call), updated, rv=rv, event_type=MODIFIED)
        return Deleted(self.present(rt, updated), None)

    async def delete_collection(
        self, call: Call, options: Obj, list_options: ListOptions
    ) -> ListResult:
        listed = self.list_objects(
            call, ListOptions(list_options.label_selector, list_options.field_selector)
        )
        for obj in listed.items:
            meta = obj["metadata"]
            one = Call(
                call.rt,
                meta.get("namespace", ""),
                meta["name"],
                dry_run=call.dry_run,
                user_agent=call.user_agent,
            )
            try:
                await self.delete(one, options)
            except StatusError as exc:
                if exc.code != 404:
                    raise
        return listed

    def _has_dependents(self, uid: str) -> bool:
        for bucket in self.store.buckets():
            for obj in self.store.items(bucket):
                for ref in obj["metadata"].get("ownerReferences") or ():
                    if ref.get("uid") == uid:
                        return True
        return False

    async def _remove(self, call: Call, obj: Obj) -> None:
        rv = self.store.next_rv()
        tombstone = dict(obj)
        tombstone["metadata"] = dict(obj["metadata"], resourceVersion=str(rv))
        await self.store.write(
            self.bucket(call.rt),
            self.key(call, obj["metadata"]["name"]),
            None,
            rv=rv,
            event_type=DELETED,
            tombstone=tombstone,
        )
        await self._after_delete(call.rt, obj)

    async def _delete_crd(self, call: Call, crd: Obj, options: Obj) -> Deleted:
        """Deletes every custom object of the CRD, then the CRD and its served resource."""
        if call.dry_run:
            return Deleted(self.present(call.rt, crd), None)
        name = crd["metadata"]["name"]
        types = self.catalog.crd_types(name)
        if types:
            rt = types[0]
            for obj in self.store.items(self.bucket(rt)):
                meta = obj["metadata"]
                one = Call(rt, meta.get("namespace", ""), meta["name"], user_agent=call.user_agent)
                if meta.get("finalizers"):
                    await self.delete(one, options)
                else:
                    await self._remove(one, obj)
        if types and self.store.count(self.bucket(types[0])):
            # Custom objects still wait on their finalizers; the CRD goes when they do.
            updated = copy.deepcopy(crd)
            updated["metadata"].setdefault("deletionTimestamp", now_rfc3339())
            finalizers = updated["metadata"].setdefault("finalizers", [])
            if "customresourcecleanup.apiextensions.k8s.io" not in finalizers:
                finalizers.append("customresourcecleanup.apiextensions.k8s.io")
            rv = self.store.next_rv()
            updated["metadata"]["resourceVersion"] = str(rv)
            await self.store.write(
                self.bucket(call.rt), self.key(call), updated, rv=rv, event_type=MODIFIED
            )
            return Deleted(self.present(call.rt, updated), None)
        await self._remove(call, crd)
        return Deleted(None, _success(call.rt, crd))

    # ---- side effects of writes

    async def _after_write(self, rt: ResourceType, old: Obj | None, new: Obj) -> None:
        if rt.is_crd and not new["metadata"].get("deletionTimestamp"):
            self.catalog.set_crd(new)
            self._types_changed()

    async def _after_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.is_crd:
            name = obj["metadata"]["name"]
            types = self.catalog.crd_types(name)
            self.catalog.remove_crd(name)
            if types:
                self.store.end_watches(self.bucket(types[0]))
                await self.store.drop_bucket(self.bucket(types[0]))
            self._types_changed()
            return
        if rt.custom:
            await self._finish_crd_cleanup(rt)

    async def _finish_crd_cleanup(self, rt: ResourceType) -> None:
        crd_bucket = "customresourcedefinitions.apiextensions.k8s.io"
        crd = self.store.get(crd_bucket, ("", rt.crd_name))
        if (
            crd is None
            or not crd["metadata"].get("deletionTimestamp")
            or self.store.count(self.bucket(rt))
        ):
            return
        crd_type = self.catalog.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_type is not None
        await self._remove(Call(crd_type, "", rt.crd_name), crd)

    def _types_changed(self) -> None:
        for callback in self.on_types_changed:
            callback()


# ---- pure helpers


def _success(rt: ResourceType, obj: Obj) -> Obj:
    details: Obj = {
        "name": obj["metadata"]["name"],
        "kind": rt.plural,
        "uid": obj["metadata"].get("uid", ""),
    }
    if rt.group:
        details["group"] = rt.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _only_status(old: Obj, new: Obj) -> Obj:
    """A /status write changes status alone (and nothing of metadata but the version check)."""
    result = copy.deepcopy(old)
    if "status" in new:
        result["status"] = new["status"]
    else:
        result.pop("status", None)
    result["metadata"]["resourceVersion"] = new["metadata"].get(
        "resourceVersion", old["metadata"]["resourceVersion"]
    )
    return result


def _only_spec_finalizers(old: Obj, new: Obj) -> Obj:
    """A namespace's /finalize write changes spec.finalizers alone (the namespace controller's)."""
    result = copy.deepcopy(old)
    finalizers = (new.get("spec") or {}).get("finalizers") or []
    result.setdefault("spec", {})["finalizers"] = finalizers
    if not finalizers:
        result["spec"].pop("finalizers")
    result["metadata"]["resourceVersion"] = new["metadata"].get(
        "resourceVersion", old["metadata"]["resourceVersion"]
    )
    return result


def _spec_changed(old: Obj, new: Obj) -> bool:
    ignored = ("metadata", "status", "apiVersion", "kind")
    return {k: v for k, v in old.items() if k not in ignored} != {
        k: v for k, v in new.items() if k not in ignored
    }


def _same_ignoring_times(old: Obj, new: Obj) -> bool:
    def strip(obj: Obj) -> Obj:
        meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        fields = [
            {k: v for k, v in m.items() if k != "time"}
            for m in obj["metadata"].get("managedFields") or ()
        ]
        return {**obj, "metadata": meta, "_managed": fields}

    return strip(old) == strip(new)


def _pod_grace_period(rt: ResourceType, pod: Obj, options: Obj) -> int:
    """Seconds a bound, unfinished pod gets to stop; 0 deletes at once (as upstream)."""
    if rt.group or rt.kind != "Pod":
        return 0
    spec = pod.get("spec") or {}
    if not spec.get("nodeName") or (pod.get("status") or {}).get("phase") in (
        "Succeeded",
        "Failed",
    ):
        return 0
    requested = options.get("gracePeriodSeconds")
    try:
        grace = (
            int(requested)
            if requested is not None
            else int(spec.get("terminationGracePeriodSeconds", 30))
        )
    except (TypeError, ValueError):
        raise bad_request(f"invalid gracePeriodSeconds: {requested!r}") from None
    if grace == 0 and pod["metadata"].get("deletionTimestamp"):
        return 0
    return max(grace, 0)


def _namespace_finalizers(rt: ResourceType, obj: Obj) -> bool:
    return rt.is_namespace and bool((obj.get("spec") or {}).get("finalizers"))


def _patch_sets_rv(content_type: str, body: Any) -> bool:
    if content_type == JSON_PATCH and isinstance(body, list):
        return any(
            isinstance(op, dict) and str(op.get("path", "")).startswith("/metadata/resourceVersion")
            for op in body
        )
    if isinstance(body, dict):
        meta = body.get("metadata")
        return isinstance(meta, dict) and "resourceVersion" in meta
    return False


def _parse_rv(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f'invalid resource version "{text}"') from None
    if value < 0:
        raise bad_request(f'invalid resource version "{text}"')
    return value


def _encode_continue(rv: int, after: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(after)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        namespace, name = data["start"]
        return int(data["rv"]), (str(namespace), str(name))
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from None
