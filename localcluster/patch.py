"""The three PATCH formats kube-apiserver accepts besides apply.

JSON patch (RFC 6902) and JSON merge patch (RFC 7386) are schema-free. Strategic merge
patch needs to know, for each list, whether it merges and by which key: callers describe
that with a `ListKeys` function (`builtin_list_keys` for built-in kinds, `crd_list_keys`
for custom resources). The same functions tell the field manager which lists are
associative, so one description of the schema serves both.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from localcluster.errors import StatusError, bad_request

ListKeys = Callable[[tuple[str, ...]], str | None]
"""Given the path of a field (map keys from the root, list indices omitted), how it merges.

For a list: `None` is atomic (replaced whole), `""` a set of primitives that merges by
union, otherwise the merge key; a composite key is comma-separated (`"port,protocol"`),
matched on every part. For a map, `ATOMIC_MAP` marks it atomic for field ownership
(labelSelectors, `x-kubernetes-map-type: atomic`); any other answer leaves it granular.
"""

ATOMIC_MAP: Final = "$atomic"

_MISSING: Final[Any] = object()


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: unlike Python's `==`, `true` is not `1`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and bool(a == b)


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- JSON patch (RFC 6902) --------------------------------------------------------------

_OPS: Final = ("add", "remove", "replace", "move", "copy", "test")
_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")


def _go_type(value: Any) -> str:
    """How Go's encoding/json names a JSON value in an unmarshal error."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


@dataclass(frozen=True)
class _Operation:
    op: str
    path: str
    tokens: list[str]
    value: Any
    source: str
    source_tokens: list[str]


class _PatchFailed(Exception):
    """A well-formed operation that does not apply to this document (422)."""


def _does_not_apply(op: str, detail: str) -> StatusError:
    return StatusError(422, "Invalid", f"jsonpatch {op} operation does not apply: {detail}")


def _missing_path(path: str) -> _PatchFailed:
    return _PatchFailed(f'doc is missing path: "{path}"')


def _parse_pointer(op: str, pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/") or _BAD_ESCAPE.search(pointer):
        raise _does_not_apply(op, f'invalid JSON pointer: "{pointer}"')
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parse_operation(raw: Any) -> _Operation:
    if not isinstance(raw, dict):
        raise bad_request(
            f"json: cannot unmarshal {_go_type(raw)} into Go value of type jsonpatch.Operation"
        )
    op = raw.get("op")
    if op not in _OPS:
        raise bad_request(f"Unexpected kind: {op if isinstance(op, str) else _json_text(op)}")
    path = raw.get("path")
    if not isinstance(path, str):
        raise bad_request(f'jsonpatch {op} operation is missing the "path" field')
    if op in ("add", "replace", "test") and "value" not in raw:
        raise bad_request(f'jsonpatch {op} operation is missing the "value" field')
    source: Any = ""
    source_tokens: list[str] = []
    if op in ("move", "copy"):
        source = raw.get("from")
        if not isinstance(source, str):
            raise bad_request(f'jsonpatch {op} operation is missing the "from" field')
        source_tokens = _parse_pointer(op, source)
    return _Operation(op, path, _parse_pointer(op, path), raw.get("value"), source, source_tokens)


def _list_index(token: str, length: int, *, allow_end: bool) -> int | None:
    if token == "-":
        return length if allow_end else None
    if not _INDEX.fullmatch(token):
        return None
    index = int(token)
    limit = length if allow_end else length - 1
    return index if index <= limit else None


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        return node.get(token, _MISSING)
    if isinstance(node, list):
        index = _list_index(token, len(node), allow_end=False)
        return _MISSING if index is None else node[index]
    return _MISSING


def _get(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    node = doc
    for token in tokens:
        node = _child(node, token)
        if node is _MISSING:
            raise _missing_path(path)
    return node


def _add(doc: Any, tokens: list[str], value: Any, op: str, path: str) -> Any:
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1], op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = _list_index(last, len(parent), allow_end=True)
        if index is None:
            raise _missing_path(path)
        parent.insert(index, value)
    else:
        raise _missing_path(path)
    return doc


def _remove(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    """Removes and returns the value at `tokens`."""
    if not tokens:
        raise _PatchFailed("cannot remove the whole document")
    parent = _get(doc, tokens[:-1], op, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        index = _list_index(last, len(parent), allow_end=False)
        if index is not None:
            return parent.pop(index)
    raise _missing_path(path)


def _replace(doc: Any, tokens: list[str], value: Any, op: str, path: str) -> Any:
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1], op, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        parent[last] = value
        return doc
    if isinstance(parent, list):
        index = _list_index(last, len(parent), allow_end=False)
        if index is not None:
            parent[index] = value
            return doc
    raise _missing_path(path)


def _apply_operation(doc: Any, o: _Operation) -> Any:
    if o.op == "add":
        return _add(doc, o.tokens, copy.deepcopy(o.value), o.op, o.path)
    if o.op == "remove":
        _remove(doc, o.tokens, o.op, o.path)
        return doc
    if o.op == "replace":
        return _replace(doc, o.tokens, copy.deepcopy(o.value), o.op, o.path)
    if o.op == "test":
        actual = _get(doc, o.tokens, o.op, o.path)
        if not json_equal(actual, o.value):
            raise _PatchFailed(f"is: {_json_text(actual)}, expected: {_json_text(o.value)}")
        return doc
    if o.op == "copy":
        value = copy.deepcopy(_get(doc, o.source_tokens, o.op, o.source))
        return _add(doc, o.tokens, value, o.op, o.path)
    # move
    _get(doc, o.source_tokens, o.op, o.source)
    if o.source == o.path:
        return doc
    if o.path.startswith(o.source + "/"):
        raise _PatchFailed(f'"from" {o.source} is a prefix of "path" {o.path}')
    if not o.source_tokens:
        raise _PatchFailed("cannot move the whole document")
    value = _remove(doc, o.source_tokens, o.op, o.source)
    return _add(doc, o.tokens, value, o.op, o.path)


def apply_json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902, all or nothing: a failing operation leaves no partial result behind."""
    if not isinstance(operations, list):
        raise bad_request(
            f"json: cannot unmarshal {_go_type(operations)} into Go value of type jsonpatch.Patch"
        )
    parsed = [_parse_operation(raw) for raw in operations]
    result = copy.deepcopy(doc)
    for o in parsed:
        try:
            result = _apply_operation(result, o)
        except _PatchFailed as e:
            raise _does_not_apply(o.op, str(e)) from None
    return result


# --- JSON merge patch (RFC 7386) --------------------------------------------------------


def _merge_into(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_into(result.get(key), value)
    return result


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386 on a copy of `doc`."""
    return _merge_into(copy.deepcopy(doc), patch)


# --- Strategic merge patch ----------------------------------------------------------------

_PATCH: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_SET_ORDER: Final = "$setElementOrder/"
_DELETE_PRIMITIVES: Final = "$deleteFromPrimitiveList/"


def _split_keys(raw: str | None) -> tuple[str, ...] | None:
    """`None` for atomic lists, `()` for merging primitive sets, else the key fields."""
    if raw is None or raw == ATOMIC_MAP:
        return None
    return tuple(k for k in raw.split(",") if k)


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and _PATCH in item


def _same_key(a: Any, b: Any, keys: tuple[str, ...]) -> bool:
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    return all((k in a) == (k in b) and json_equal(a.get(k), b.get(k)) for k in keys)


def _index_of(items: list[Any], item: Any, keys: tuple[str, ...]) -> int:
    for i, candidate in enumerate(items):
        if (
            _same_key(candidate, item, keys)
            if keys and isinstance(item, dict)
            else json_equal(candidate, item)
        ):
            return i
    return -1


def _sort_by(items: list[Any], order: list[Any], keys: tuple[str, ...]) -> list[Any]:
    def position(item: Any) -> int:
        index = _index_of(order, item, keys)
        return index if index >= 0 else len(order)

    return sorted(items, key=position)


def _merge_sorted(
    left: list[Any], right: list[Any], server_order: list[Any], keys: tuple[str, ...]
) -> list[Any]:
    """Interleaves server-only items (left) into patch items (right) as upstream does.

    Each side keeps its own order; a left item goes first only when both items appear
    in the live list and it came earlier there, so new items lead.
    """
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index_of(server_order, left[i], keys)
            ri = _index_of(server_order, right[j], keys)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_order(
    merged: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    keys: tuple[str, ...],
) -> list[Any]:
    in_patch = [m for m in merged if _index_of(patch_order, m, keys) >= 0]
    server_only = [m for m in merged if _index_of(patch_order, m, keys) < 0]
    return _merge_sorted(
        _sort_by(server_only, server_order, keys),
        _sort_by(in_patch, patch_order, keys),
        server_order,
        keys,
    )


class _StrategicMerge:
    def __init__(self, list_keys: ListKeys) -> None:
        self._list_keys = list_keys

    def keys(self, path: tuple[str, ...]) -> tuple[str, ...] | None:
        return _split_keys(self._list_keys(path))

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """Merges `patch` into `original` in place; `None` means the map is deleted."""
        directive = patch.get(_PATCH, _MISSING)
        if directive is not _MISSING:
            rest = {k: v for k, v in patch.items() if k != _PATCH}
            if directive == "replace":
                return self.merge_map({}, rest, path)
            if directive == "delete":
                return None
            if directive != "merge":
                raise bad_request(f"Unknown patch type: {directive} in map: {_json_text(patch)}")
            patch = rest
        patch = dict(patch)

        retain = patch.pop(_RETAIN_KEYS, _MISSING)
        if retain is not _MISSING:
            if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
                raise bad_request("invalid patch: $retainKeys must be a list of strings")
            for key in [k for k in original if k not in retain]:
                del original[key]

        for directive_key in [k for k in patch if k.startswith(_SET_ORDER)]:
            order = patch.pop(directive_key)
            field = directive_key[len(_SET_ORDER) :]
            self._set_element_order(original, patch, field, order, (*path, field))

        for key, value in patch.items():
            if key.startswith(_DELETE_PRIMITIVES):
                self._delete_primitives(original, key[len(_DELETE_PRIMITIVES) :], value)
                continue
            if value is None:
                original.pop(key, None)
                continue
            current = original.get(key, _MISSING)
            if isinstance(value, dict):
                merged = self.merge_map(
                    current if isinstance(current, dict) else {}, value, (*path, key)
                )
                if merged is None:
                    original.pop(key, None)
                else:
                    original[key] = merged
            elif isinstance(value, list):
                original[key] = self.merge_list(
                    current if isinstance(current, list) else [], value, (*path, key)
                )
            else:
                original[key] = value
        return original

    def _delete_primitives(self, original: dict[str, Any], field: str, values: Any) -> None:
        if not isinstance(values, list):
            raise bad_request(
                f"invalid patch: {_DELETE_PRIMITIVES}{field} must be a list of primitives"
            )
        current = original.get(field)
        if isinstance(current, list):
            original[field] = [x for x in current if not any(json_equal(x, v) for v in values)]

    def _set_element_order(
        self,
        original: dict[str, Any],
        patch: dict[str, Any],
        field: str,
        order: Any,
        path: tuple[str, ...],
    ) -> None:
        if not isinstance(order, list):
            raise bad_request(f"invalid patch: {_SET_ORDER}{field} must be a list")
        keys = self.keys(path) or ()
        current = original.get(field, _MISSING)
        patch_list = patch.pop(field, _MISSING)
        if patch_list is None:
            original.pop(field, None)
            return
        if patch_list is not _MISSING and not isinstance(patch_list, list):
            raise bad_request(f"invalid patch: {field} must be a list")
        if current is not _MISSING and not isinstance(current, list):
            current = _MISSING
        if patch_list is not _MISSING:
            self._check_order(patch_list, order, keys, field)
            base = current if current is not _MISSING else []
            merged = self.merge_list(base, patch_list, path)
        elif current is not _MISSING:
            merged = current
        else:
            return
        if keys and any(isinstance(x, dict) for x in merged):
            for entry in order:
                if not isinstance(entry, dict) or keys[0] not in entry:
                    raise bad_request(
                        f"map: {_json_text(entry)} does not contain declared merge key: {keys[0]}"
                    )
        server_order = current if current is not _MISSING else []
        original[field] = _normalize_order(merged, order, server_order, keys)

    @staticmethod
    def _check_order(
        patch_list: list[Any], order: list[Any], keys: tuple[str, ...], field: str
    ) -> None:
        """Patch items must appear in `$setElementOrder` in the same relative order."""
        items = [x for x in patch_list if not _is_directive(x)]
        pi = oi = 0
        while pi < len(items) and oi < len(order):
            if _index_of([order[oi]], items[pi], keys) == 0:
                pi += 1
            oi += 1
        if pi < len(items):
            raise bad_request(
                f"invalid patch: the order in patch list {_json_text(patch_list)} doesn't match "
                f"{_SET_ORDER}{field} list {_json_text(order)}"
            )

    def clean(self, value: Any, path: tuple[str, ...]) -> Any:
        """A new value as stored: nulls and directives dropped, `_MISSING` if deleted."""
        if isinstance(value, dict):
            merged = self.merge_map({}, value, path)
            return _MISSING if merged is None else merged
        if isinstance(value, list):
            return self.merge_list([], value, path)
        return value

    def merge_list(self, original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
        keys = self.keys(path)
        replace = False
        for item in patch:
            if _is_directive(item):
                directive = item[_PATCH]
                if directive == "replace":
                    replace = True
                elif directive == "merge":
                    raise bad_request("merging lists cannot yet be specified in the patch")
                elif directive != "delete":
                    raise bad_request(f"Unknown patch type: {directive} in map: {_json_text(item)}")
        plain = [x for x in patch if not _is_directive(x)]

        if keys is None or replace:
            cleaned = [self.clean(x, path) for x in plain]
            return [x for x in cleaned if x is not _MISSING]

        values = [x for x in original if not _is_directive(x)] + plain
        has_maps = any(isinstance(x, dict) for x in values)
        if not has_maps:
            merged = list(original)
            for item in plain:
                if _index_of(merged, item, ()) < 0:
                    merged.append(item)
            return _normalize_order(merged, plain, original, ())
        if not all(isinstance(x, dict) for x in values):
            raise bad_request(
                f"invalid patch: list {'.'.join(path)} mixes maps and primitive values"
            )
        if not keys:
            raise bad_request(f"cannot merge lists without merge key for {'.'.join(path)}")

        remaining = list(original)
        for item in patch:
            if _is_directive(item) and item[_PATCH] == "delete":
                if keys[0] not in item:
                    raise bad_request(
                        f"map: {_json_text(item)} does not contain declared merge key: {keys[0]}"
                    )
                remaining = [x for x in remaining if not _same_key(x, item, keys)]

        merged = list(remaining)
        for item in plain:
            if keys[0] not in item:
                raise bad_request(
                    f"map: {_json_text(item)} does not contain declared merge key: {keys[0]}"
                )
            index = _index_of(merged, item, keys)
            if index >= 0:
                existing = merged[index]
                result = self.merge_map(existing if isinstance(existing, dict) else {}, item, path)
                if result is None:
                    del merged[index]
                else:
                    merged[index] = result
            else:
                new = self.clean(item, path)
                if new is not _MISSING:
                    merged.append(new)
        return _normalize_order(merged, plain, remaining, keys)


def apply_strategic_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any], list_keys: ListKeys
) -> dict[str, Any]:
    """Kubernetes strategic merge patch, as kubectl's client-side apply and `patch` send it.

    The input is not mutated and no directive survives into the result.
    """
    if not isinstance(patch, dict):
        raise bad_request(
            f"json: cannot unmarshal {_go_type(patch)} into Go value of type "
            "map[string]interface {}"
        )
    merged = _StrategicMerge(list_keys).merge_map(copy.deepcopy(doc), patch, ())
    return {} if merged is None else merged


# --- Merge keys -------------------------------------------------------------------------

_CONTAINER_LISTS: Final = frozenset({"containers", "initContainers", "ephemeralContainers"})
_CONTAINER_FIELD_KEYS: Final = {
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
}
_POD_SPEC_KEYS: Final = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
_ROOT_KEYS: Final = {
    ("spec", "ports"): "port",  # Service
    ("status", "conditions"): "type",
    ("webhooks",): "name",  # admission webhook configurations
    ("secrets",): "name",  # ServiceAccount
}


def builtin_list_keys(path: tuple[str, ...]) -> str | None:
    """Strategic-merge keys of the built-in kinds served here (their `patchMergeKey` tags)."""
    if not path:
        return None
    root = _ROOT_KEYS.get(path)
    if root is not None:
        return root
    name = path[-1]
    parent = path[-2] if len(path) >= 2 else ""
    if parent == "metadata":
        if name == "ownerReferences":
            return "uid"
        if name == "finalizers":
            return ""
        return None
    if parent in _CONTAINER_LISTS:
        return _CONTAINER_FIELD_KEYS.get(name)
    if parent == "spec":
        return _POD_SPEC_KEYS.get(name)
    return None


_APPLY_KEY_OVERRIDES: Final = {
    "containerPort": "containerPort,protocol",
    "port": "port,protocol",
    "topologyKey": "topologyKey,whenUnsatisfiable",
}
_ATOMIC_SELECTORS: Final = frozenset(
    {"podSelector", "namespaceSelector", "objectSelector", "labelSelector"}
)


def builtin_apply_keys(path: tuple[str, ...]) -> str | None:
    """Server-side apply's view of built-in kinds (`listMapKeys`, atomic maps).

    It differs from the strategic-merge keys where upstream declares composite list-map
    keys (ports by number and protocol) and where label selectors are atomic.
    """
    if not path:
        return None
    name = path[-1]
    if (
        name in _ATOMIC_SELECTORS
        or name == "roleRef"
        or path == ("spec", "selector")
        or (name == "nodeSelector" and path[-2:] == ("spec", "nodeSelector"))
    ):
        return ATOMIC_MAP
    keys = builtin_list_keys(path)
    if keys is not None:
        return _APPLY_KEY_OVERRIDES.get(keys, keys)
    return None


def _schema_step(node: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    while node is not None and isinstance(node.get("items"), dict):
        node = node["items"]
    if node is None:
        return None
    properties = node.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get(name), dict):
        child: dict[str, Any] = properties[name]
        return child
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        return additional
    return None


def _schema_keys(node: dict[str, Any] | None) -> str | None:
    if node is None:
        return None
    if node.get("type") == "array" or "items" in node:
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set":
            return ""
        if list_type == "map":
            keys = [k for k in node.get("x-kubernetes-list-map-keys") or () if isinstance(k, str)]
            return ",".join(keys) if keys else None
        return None
    if node.get("x-kubernetes-map-type") == "atomic":
        return ATOMIC_MAP
    return None


def crd_list_keys(schema: dict[str, Any]) -> ListKeys:
    """List semantics from a CRD's `openAPIV3Schema` (`x-kubernetes-list-type` and friends).

    `metadata` is not described by CRD schemas, so it follows the built-in rules.
    """
    cache: dict[tuple[str, ...], str | None] = {}

    def list_keys(path: tuple[str, ...]) -> str | None:
        if path in cache:
            return cache[path]
        if path and path[0] == "metadata":
            result = builtin_list_keys(path)
        else:
            node: dict[str, Any] | None = schema
            for name in path:
                node = _schema_step(node, name)
                if node is None:
                    break
            result = _schema_keys(node)
        cache[path] = result
        return result

    return list_keys
