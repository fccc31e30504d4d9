"""Admission webhooks: `MutatingWebhookConfiguration` and `ValidatingWebhookConfiguration`.

The registry calls this at the points kube-apiserver does: mutating webhooks after the
object is decoded and defaulted but before schema validation, validating webhooks after
validation and just before the write (`registry.py`). Each matching webhook gets a real
`admission.k8s.io/v1` AdmissionReview over HTTPS (verified against `caBundle`, else the
system's trust); a denial, or a failure with `failurePolicy: Fail`, becomes the error
kube-apiserver would return, worded the same.

Simplifications, on purpose: `matchPolicy` Equivalent is treated as Exact (every kind is
served in one version here); `matchConditions` are not evaluated; the `scale` subresource
is sent the parent object rather than an `autoscaling/v1` Scale; webhook configurations
themselves are never subject to webhooks, as upstream. Validating webhooks are called in
parallel, mutating ones in order of configuration name (then list order), as upstream.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from localcluster import patch
from localcluster.errors import StatusError, bad_request, internal
from localcluster.selectors import LabelSelector
from localcluster.storage import Store

if TYPE_CHECKING:
    from localcluster.registry import Call

Obj = dict[str, Any]

MUTATING = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
VALIDATING = "validatingwebhookconfigurations.admissionregistration.k8s.io"
SERVICE_ADDRESS_ANNOTATION = "localcluster.sympozium.ai/address-"
DEFAULT_TIMEOUT_SECONDS = 10
ADMIN_USER: Obj = {
    "username": "kubernetes-admin",
    "groups": ["system:masters", "system:authenticated"],
}
_EXEMPT_GROUP = "admissionregistration.k8s.io"
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


class WebhookCallFailed(Exception):
    """Calling a webhook failed: unreachable, timed out, or an unusable response."""


@dataclass(frozen=True)
class Attributes:
    """What is being admitted, as the rules and selectors see it."""

    operation: str
    group: str
    version: str
    resource: str
    subresource: str
    namespaced: bool
    namespace: str
    name: str
    object: Obj | None
    old_object: Obj | None


# ---- matching (pure)


def _listed(values: Any, wanted: str) -> bool:
    return any(v == "*" or v == wanted for v in values or ())


def rule_matches(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """One `rules[]` entry against the request, as upstream's rule matcher."""
    if not _listed(rule.get("operations"), attrs.operation):
        return False
    if not _listed(rule.get("apiGroups"), attrs.group):
        return False
    if not _listed(rule.get("apiVersions"), attrs.version):
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and attrs.namespaced:
        return False
    if scope == "Namespaced" and not attrs.namespaced:
        return False
    for entry in rule.get("resources") or ():
        resource, _, sub = str(entry).partition("/")
        if (resource in ("*", attrs.resource)) and (sub in ("*", attrs.subresource)):
            return True
    return False


def _selector(raw: Any) -> LabelSelector:
    return LabelSelector.from_dict(raw) if isinstance(raw, Mapping) else LabelSelector()


def object_selector_matches(webhook: Mapping[str, Any], attrs: Attributes) -> bool:
    """Upstream: matches when either the new or the old object's labels match."""
    selector = _selector(webhook.get("objectSelector"))
    if selector.empty:
        return True
    for obj in (attrs.object, attrs.old_object):
        if obj is not None and selector.matches((obj.get("metadata") or {}).get("labels")):
            return True
    return False


def namespace_selector_matches(
    webhook: Mapping[str, Any], attrs: Attributes, namespace: Obj | None
) -> bool:
    """Cluster-scoped objects always match, except Namespaces, matched by their own labels."""
    selector = _selector(webhook.get("namespaceSelector"))
    if selector.empty:
        return True
    if attrs.group == "" and attrs.resource == "namespaces":
        target = attrs.object or attrs.old_object
        return selector.matches(((target or {}).get("metadata") or {}).get("labels"))
    if not attrs.namespaced:
        return True
    if namespace is None:
        return False
    return selector.matches((namespace.get("metadata") or {}).get("labels"))


def webhook_matches(webhook: Mapping[str, Any], attrs: Attributes, namespace: Obj | None) -> bool:
    return (
        any(rule_matches(rule, attrs) for rule in webhook.get("rules") or ())
        and namespace_selector_matches(webhook, attrs, namespace)
        and object_selector_matches(webhook, attrs)
    )


def denial(webhook_name: str, result: Mapping[str, Any] | None) -> StatusError:
    """kube-apiserver's `ToStatusErr`: the webhook's own status, its message prefixed."""
    result = dict(result or {})
    denied_by = f'admission webhook "{webhook_name}" denied the request'
    code = int(result.get("code") or 403)
    if code < 400:
        code = 400
    reason = str(result.get("reason") or "")
    if result.get("message"):
        message = f"{denied_by}: {result['message']}"
    elif reason:
        message = f"{denied_by}: {reason}"
    else:
        message = f"{denied_by} without explanation"
    if not reason and code == 403:
        reason = "Forbidden"
    details = result.get("details")
    return StatusError(code, reason, message, dict(details) if isinstance(details, dict) else {})


def call_failed(webhook_name: str, cause: str) -> StatusError:
    return internal(f'failed calling webhook "{webhook_name}": {cause}')


# ---- the admission chain


class Admission:
    """Finds the webhooks that match a request and calls them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ssl_contexts: dict[str, ssl.SSLContext] = {}

    # -- entry points for the registry

    async def mutate(
        self, call: Call, operation: str, obj: Obj, old: Obj | None, options: Obj | None = None
    ) -> Obj:
        """Runs the mutating webhooks; returns the (possibly patched) object."""
        webhooks = self._webhooks(MUTATING, call, operation, obj, old)
        if not webhooks:
            return obj
        current = obj
        changed_after: list[int] = []  # indexes of IfNeeded webhooks that later changes invalidate
        for index, webhook in enumerate(webhooks):
            patched = await self._call_one(webhook, call, operation, current, old, options, True)
            if patched is not None and not patch.json_equal(patched, current):
                current = patched
                changed_after = [i for i in range(index) if _reinvoke(webhooks[i])]
        for index in changed_after:
            patched = await self._call_one(
                webhooks[index], call, operation, current, old, options, True
            )
            if patched is not None:
                current = patched
        return current

    async def validate(
        self,
        call: Call,
        operation: str,
        obj: Obj | None,
        old: Obj | None,
        options: Obj | None = None,
    ) -> None:
        """Runs the validating webhooks; the first denial (in configuration order) wins."""
        webhooks = self._webhooks(VALIDATING, call, operation, obj, old)
        if not webhooks:
            return
        results = await asyncio.gather(
            *(
                self._call_one(webhook, call, operation, obj, old, options, False)
                for webhook in webhooks
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def delete(self, call: Call, old: Obj, options: Obj | None) -> None:
        """DELETE: mutating webhooks are called too (their patches have nothing to change)."""
        for webhook in self._webhooks(MUTATING, call, "DELETE", None, old):
            await self._call_one(webhook, call, "DELETE", None, old, options, True)
        await self.validate(call, "DELETE", None, old, options)

    # -- matching against the store

    def _webhooks(
        self, bucket: str, call: Call, operation: str, obj: Obj | None, old: Obj | None
    ) -> list[Obj]:
        rt = call.rt
        if rt.group == _EXEMPT_GROUP or not self.store.count(bucket):
            return []
        attrs = Attributes(
            operation=operation,
            group=rt.group,
            version=rt.version,
            resource=rt.plural,
            subresource=call.subresource,
            namespaced=rt.namespaced,
            namespace=call.namespace if rt.namespaced else "",
            name=call.name,
            object=obj,
            old_object=old,
        )
        namespace = self.store.get("namespaces", ("", attrs.namespace)) if attrs.namespace else None
        matched: list[Obj] = []
        for config in self.store.items(bucket):
            if config["metadata"].get("deletionTimestamp"):
                continue
            for webhook in config.get("webhooks") or ():
                if isinstance(webhook, dict) and webhook_matches(webhook, attrs, namespace):
                    matched.append(webhook)
        return matched

    # -- calling one webhook

    async def _call_one(
        self,
        webhook: Obj,
        call: Call,
        operation: str,
        obj: Obj | None,
        old: Obj | None,
        options: Obj | None,
        mutating: bool,
    ) -> Obj | None:
        """Calls a webhook; returns the patched object (mutating) or None; raises on denial."""
        name = str(webhook.get("name", ""))
        if call.dry_run and webhook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise bad_request(f'admission webhook "{name}" does not support dry run')
        uid = str(uuid.uuid4())
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": self._request(uid, call, operation, obj, old, options),
        }
        try:
            response = await self._post(webhook, review)
            verdict = _verify(response, uid, mutating)
        except WebhookCallFailed as exc:
            if webhook.get("failurePolicy", "Fail") == "Ignore":
                return None
            raise call_failed(name, str(exc)) from None
        call.warnings.extend(str(w) for w in verdict.get("warnings") or ())
        if not verdict.get("allowed"):
            raise denial(name, verdict.get("status"))
        raw_patch = verdict.get("patch")
        if not mutating or not raw_patch or obj is None:
            return None
        try:
            operations = json.loads(base64.b64decode(raw_patch))
            patched = patch.apply_json_patch(obj, operations)
        except (ValueError, binascii.Error, StatusError) as exc:
            message = exc.message if isinstance(exc, StatusError) else str(exc)
            raise internal(message) from None
        if not isinstance(patched, dict):
            raise internal(f'admission webhook "{name}" returned a patch that is not an object')
        return patched

    def _request(
        self,
        uid: str,
        call: Call,
        operation: str,
        obj: Obj | None,
        old: Obj | None,
        options: Obj | None,
    ) -> Obj:
        rt = call.rt
        kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
        shown_options: Obj = {
            k: v for k, v in (options or {}).items() if k not in ("kind", "apiVersion")
        }
        if call.field_manager and operation != "DELETE":
            shown_options.setdefault("fieldManager", call.field_manager)
        if call.dry_run:
            shown_options["dryRun"] = ["All"]
        request: Obj = {
            "uid": uid,
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": call.name,
            "operation": operation,
            "userInfo": call.user.to_dict() if call.user else copy.deepcopy(ADMIN_USER),
            "object": _shown(rt.api_version, rt.kind, obj),
            "oldObject": _shown(rt.api_version, rt.kind, old),
            "dryRun": call.dry_run,
            "options": {
                "kind": _OPTIONS_KIND.get(operation, "CreateOptions"),
                "apiVersion": "meta.k8s.io/v1",
                **shown_options,
            },
        }
        if call.subresource:
            request["subResource"] = call.subresource
            request["requestSubResource"] = call.subresource
        if rt.namespaced and call.namespace:
            request["namespace"] = call.namespace
        return request

    async def _post(self, webhook: Obj, review: Obj) -> Any:
        timeout = int(webhook.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
        client_config = webhook.get("clientConfig") or {}
        url, server_hostname = self._address(client_config)
        url = f"{url}{'&' if '?' in url else '?'}timeout={timeout}s"
        context = self._ssl_context(str(client_config.get("caBundle") or ""))
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.post(
                    url,
                    json=review,
                    ssl=context if url.startswith("https:") else False,
                    server_hostname=server_hostname,
                    headers={"Accept": "application/json"},
                ) as response,
            ):
                body = await response.read()
                if response.status != 200:
                    raise WebhookCallFailed(
                        f"failed to call webhook: the server responded with the status "
                        f"code {response.status} but did not return more information"
                    )
        except TimeoutError:
            raise WebhookCallFailed(
                f'failed to call webhook: Post "{url}": context deadline exceeded'
            ) from None
        except aiohttp.ClientError as exc:
            raise WebhookCallFailed(f'failed to call webhook: Post "{url}": {exc}') from None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise WebhookCallFailed(f"received invalid webhook response: {exc}") from None

    def _address(self, client_config: Mapping[str, Any]) -> tuple[str, str | None]:
        """The URL to post to, and the host name TLS must verify (for Services)."""
        if client_config.get("url"):
            return str(client_config["url"]), None
        service = client_config.get("service") or {}
        namespace = str(service.get("namespace", ""))
        name = str(service.get("name", ""))
        port = int(service.get("port") or 443)
        path = str(service.get("path") or "/")
        found = self.store.get("services", (namespace, name))
        if found is None:
            raise WebhookCallFailed(
                f'failed to call webhook: service "{name}" not found in namespace "{namespace}"'
            )
        annotations = found["metadata"].get("annotations") or {}
        address = ""
        for entry in (found.get("spec") or {}).get("ports") or ():
            if entry.get("port") == port:
                key = str(entry.get("name") or entry.get("port"))
                address = str(annotations.get(SERVICE_ADDRESS_ANNOTATION + key, ""))
                break
        if not address:
            raise WebhookCallFailed(
                f'failed to call webhook: service "{namespace}/{name}" has no local address '
                f"for port {port}"
            )
        if not path.startswith("/"):
            path = "/" + path
        return f"https://{address}{path}", f"{name}.{namespace}.svc"

    def _ssl_context(self, ca_bundle: str) -> ssl.SSLContext:
        context = self._ssl_contexts.get(ca_bundle)
        if context is None:
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle).decode()
                    context = ssl.create_default_context(cadata=pem)
                except (ValueError, binascii.Error, ssl.SSLError) as exc:
                    raise WebhookCallFailed(
                        f"failed to call webhook: unable to load caBundle: {exc}"
                    ) from None
            else:
                context = ssl.create_default_context()
            self._ssl_contexts[ca_bundle] = context
        return context


def _reinvoke(webhook: Mapping[str, Any]) -> bool:
    return webhook.get("reinvocationPolicy") == "IfNeeded"


def _shown(api_version: str, kind: str, obj: Obj | None) -> Obj | None:
    if obj is None:
        return None
    shown = dict(obj)
    shown["apiVersion"] = api_version
    shown["kind"] = kind
    return shown


def _verify(review: Any, uid: str, mutating: bool) -> Obj:
    """The response of an AdmissionReview, checked as upstream's VerifyAdmissionResponse."""
    if not isinstance(review, dict):
        raise WebhookCallFailed("received invalid webhook response: not an AdmissionReview")
    if review.get("apiVersion") != "admission.k8s.io/v1" or review.get("kind") != (
        "AdmissionReview"
    ):
        raise WebhookCallFailed(
            "received invalid webhook response: expected webhook response of "
            f"admission.k8s.io/v1, Kind=AdmissionReview, got {review.get('apiVersion')}, "
            f"Kind={review.get('kind')}"
        )
    response = review.get("response")
    if not isinstance(response, dict):
        raise WebhookCallFailed("received invalid webhook response: response is missing")
    if response.get("uid") != uid:
        raise WebhookCallFailed(
            f'received invalid webhook response: expected response.uid="{uid}", '
            f'got "{response.get("uid")}"'
        )
    if response.get("patch") or response.get("patchType"):
        if not mutating:
            raise WebhookCallFailed(
                "received invalid webhook response: validating webhook may not return a patch"
            )
        if response.get("patchType") != "JSONPatch":
            raise WebhookCallFailed(
                "received invalid webhook response: expected patchType JSONPatch, got "
                f'"{response.get("patchType")}"'
            )
    return response
