"""`metadata.managedFields` and server-side apply, after structured-merge-diff.

Ownership is tracked as sets of paths whose elements are the FieldsV1 keys themselves
(`f:spec`, `k:{"name":"app"}`, `v:"foo"`), so encoding is a trie walk and conflict
messages render straight from the path. Schema knowledge comes only from a `ListKeys`
function: which lists are associative (and by which keys), which are sets, and which
maps are atomic. Everything else is treated as a granular map or an atomic leaf.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from localcluster.errors import Cause, StatusError, bad_request
from localcluster.patch import (
    ATOMIC_MAP,
    ListKeys,
    builtin_apply_keys,
    builtin_list_keys,
    json_equal,
)

Path = tuple[str, ...]
Names = tuple[str, ...]

_MISSING: Final[Any] = object()

# Upstream strips these from every field set (stripmeta.go); status and spec are reset
# fields of the main resource and of the status subresource respectively.
_ALWAYS_IGNORED: Final = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "managedFields"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "generation"),
        ("metadata", "creationTimestamp"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "selfLink"),
    }
)
# The metadata map itself is never owned, only what is in it.
_METADATA: Final = ("f:metadata",)

# Fields a typed zero value of a built-in kind serializes (non-omitempty structs and
# slices): upstream never sees them "added", so they carry no `.` marker.
_BUILTIN_ZERO: Final = frozenset(
    {
        ("metadata",),
        ("spec",),
        ("status",),
        ("spec", "containers"),
        ("spec", "template"),
        ("spec", "template", "metadata"),
        ("spec", "template", "spec"),
        ("spec", "template", "spec", "containers"),
        ("spec", "strategy"),
        ("spec", "resources"),
        ("spec", "names"),
        ("status", "loadBalancer"),
        ("status", "acceptedNames"),
        ("involvedObject",),
        ("source",),
        ("regarding",),
        ("deprecatedSource",),
    }
)

# Key fields that upstream defaults before computing an item's identity.
_KEY_DEFAULTS: Final = {"protocol": "TCP"}


def _ignored(subresource: str) -> frozenset[Names]:
    if subresource == "status":
        return _ALWAYS_IGNORED | {("spec",)}
    return _ALWAYS_IGNORED | {("status",)}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _zero(api_version: str) -> frozenset[Names]:
    """Typed built-in objects always carry their zero-value fields; custom ones do not."""
    group = api_version.rpartition("/")[0]
    builtin = "." not in group or group.endswith(".k8s.io")
    return _BUILTIN_ZERO if builtin else frozenset()


# --- Path elements ------------------------------------------------------------------------


def _value_order(value: Any) -> tuple[int, Any]:
    """structured-merge-diff's total order of values: numbers, strings, bools, others."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if value is None:
        return (5, 0)
    return (3 if isinstance(value, list) else 4, _json(value))


def _pe_order(pe: str) -> tuple[int, Any]:
    kind, _, body = pe.partition(":")
    try:
        if kind == "f":
            return (0, body)
        if kind == "k":
            keys = json.loads(body)
            return (1, tuple((k, _value_order(v)) for k, v in sorted(keys.items())))
        if kind == "v":
            return (2, _value_order(json.loads(body)))
        if kind == "i":
            return (3, int(body))
    except (ValueError, AttributeError):
        pass
    return (4, pe)


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return _json(value)


def render_path(path: Path) -> str:
    """A path as upstream prints it in conflicts: `.spec.containers[name="app"].image`."""
    out: list[str] = []
    for pe in path:
        kind, _, body = pe.partition(":")
        try:
            if kind == "f":
                out.append("." + body)
            elif kind == "k":
                keys = json.loads(body)
                out.append(
                    "[" + ",".join(f"{k}={_go_value(v)}" for k, v in sorted(keys.items())) + "]"
                )
            elif kind == "v":
                out.append(f"[={_go_value(json.loads(body))}]")
            elif kind == "i":
                out.append(f"[{body}]")
            else:
                out.append(pe)
        except (ValueError, AttributeError):
            out.append(pe)
    return "".join(out)


# --- FieldSet ---------------------------------------------------------------------------


class FieldSet:
    """An immutable set of owned paths (each a tuple of FieldsV1 path elements)."""

    __slots__ = ("paths",)

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self.paths: frozenset[Path] = frozenset(paths)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __bool__(self) -> bool:
        return bool(self.paths)

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self.paths == other.paths

    def __hash__(self) -> int:
        return hash(self.paths)

    def __repr__(self) -> str:
        return f"FieldSet({sorted(render_path(p) for p in self.paths)!r})"

    def __or__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths | other.paths)

    def __and__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths & other.paths)

    def __sub__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths - other.paths)

    def prefixes(self) -> frozenset[Path]:
        """Every path and all of its ancestors: what must stay for them to exist."""
        return frozenset(p[:i] for p in self.paths for i in range(1, len(p) + 1))

    def ordered(self) -> list[Path]:
        """Upstream's iteration order: at each level members first, then children."""
        trie = _trie(self.paths)
        out: list[Path] = []

        def walk(node: dict[str, Any], prefix: Path) -> None:
            names = sorted(node, key=_pe_order)
            out.extend((*prefix, pe) for pe in names if (*prefix, pe) in self.paths)
            for pe in names:
                if node[pe]:
                    walk(node[pe], (*prefix, pe))

        walk(trie, ())
        return out

    def render(self) -> list[str]:
        return [render_path(p) for p in self.ordered()]


def _trie(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for pe in path:
            node = node.setdefault(pe, {})
    return root


def to_fields_v1(fs: FieldSet) -> dict[str, Any]:
    """The FieldsV1 trie, keys ordered as upstream serializes them (`.` first)."""

    def emit(node: dict[str, Any], prefix: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if prefix and node and prefix in fs.paths:
            out["."] = {}
        for pe in sorted(node, key=_pe_order):
            out[pe] = emit(node[pe], (*prefix, pe))
        return out

    return emit(_trie(fs.paths), ())


def from_fields_v1(d: dict[str, Any]) -> FieldSet:
    """Parses a FieldsV1 trie; raises ValueError if it is not one."""
    paths: set[Path] = set()

    def walk(node: Any, prefix: Path) -> None:
        if not isinstance(node, dict):
            raise ValueError(f"FieldsV1 node at {render_path(prefix)!r} is not an object")
        if not node and prefix:
            paths.add(prefix)
        for key, child in node.items():
            if key == ".":
                if prefix:
                    paths.add(prefix)
                continue
            if not isinstance(key, str) or key[:2] not in ("f:", "k:", "v:", "i:"):
                raise ValueError(f"invalid FieldsV1 path element {key!r}")
            walk(child, (*prefix, key))

    walk(d, ())
    return FieldSet(paths)


# --- Walking objects --------------------------------------------------------------------


def _item_pe(item: Any, keys: tuple[str, ...]) -> str | None:
    """The path element of a list item, or None when the list cannot be associative."""
    if not keys:
        return None if isinstance(item, dict | list) else "v:" + _json(item)
    if not isinstance(item, dict):
        return None
    ident: dict[str, Any] = {}
    for key in keys:
        if key in item:
            ident[key] = item[key]
        elif key in _KEY_DEFAULTS:
            ident[key] = _KEY_DEFAULTS[key]
    if not ident or any(isinstance(v, dict | list) for v in ident.values()):
        return None
    return "k:" + _json(ident)


def _pe_keys(pe: str) -> tuple[str, ...]:
    if pe.startswith("k:"):
        try:
            return tuple(json.loads(pe[2:]))
        except ValueError:
            return ()
    return ()


@dataclass
class _Diff:
    added: set[Path]
    modified: set[Path]
    removed: set[Path]


class _Walker:
    def __init__(
        self, list_keys: ListKeys, ignored: frozenset[Names], zero: frozenset[Names] = frozenset()
    ) -> None:
        # Built-in lists have different identities for apply than for strategic merge.
        self._lk = builtin_apply_keys if list_keys is builtin_list_keys else list_keys
        self._ignored = ignored
        self._zero = zero

    def _keys(self, names: Names) -> tuple[str, ...] | None:
        raw = self._lk(names)
        if raw is None or raw == ATOMIC_MAP:
            return None
        return tuple(k for k in raw.split(",") if k)

    def item_pes(self, value: list[Any], names: Names) -> list[str] | None:
        keys = self._keys(names)
        if keys is None:
            return None
        pes: list[str] = []
        for item in value:
            pe = _item_pe(item, keys)
            if pe is None:
                return None
            pes.append(pe)
        return pes

    def kind(self, value: Any, names: Names) -> tuple[str, list[str]]:
        """absent, null, map, assoc (with the items' path elements) or leaf."""
        if value is _MISSING:
            return "absent", []
        if value is None:
            return "null", []
        if isinstance(value, dict):
            return ("leaf", []) if self._lk(names) == ATOMIC_MAP else ("map", [])
        if isinstance(value, list):
            pes = self.item_pes(value, names)
            if pes is not None:
                return "assoc", pes
        return "leaf", []

    def _child_names(self, names: Names, key: str) -> Names | None:
        child = (*names, key)
        return None if child in self._ignored else child

    # field sets

    def collect(self, value: Any, names: Names, path: Path, out: set[Path]) -> None:
        kind, pes = self.kind(value, names)
        if kind == "map":
            if not value and path and path != _METADATA:
                out.add(path)
            for key, child in value.items():
                child_names = self._child_names(names, key)
                if child_names is not None:
                    self.collect(child, child_names, (*path, "f:" + key), out)
        elif kind == "assoc":
            for item, pe in zip(value, pes, strict=True):
                out.add((*path, pe))
                if isinstance(item, dict):
                    self.collect(item, names, (*path, pe), out)
        elif path:
            out.add(path)

    # comparison

    def diff(self, lhs: Any, rhs: Any, names: Names, path: Path, d: _Diff) -> None:
        lkind, lpes = self.kind(lhs, names)
        rkind, rpes = self.kind(rhs, names)
        containers = ("map", "assoc")
        if lkind == "absent" and rkind == "absent":
            return
        if lkind in containers and rkind == lkind:
            self._diff_children(lhs, lpes, rhs, rpes, lkind, names, path, d)
            return
        if lkind in containers and rkind in ("absent", "null"):
            self._diff_children(lhs, lpes, _MISSING, [], lkind, names, path, d)
            if rkind == "absent":
                _mark(d.removed, path)
            return
        if rkind in containers and lkind in ("absent", "null"):
            self._diff_children(_MISSING, [], rhs, rpes, rkind, names, path, d)
            if lkind == "absent":
                _mark(d.added, path)
            return
        if lkind in containers or rkind in containers:
            # The value changed shape: the old contents went, the new arrived.
            if lkind in containers:
                self._diff_children(lhs, lpes, _MISSING, [], lkind, names, path, d)
            if rkind in containers:
                self._diff_children(_MISSING, [], rhs, rpes, rkind, names, path, d)
            _mark(d.modified, path)
            return
        if lkind == "absent":
            _mark(d.added, path)
        elif rkind == "absent":
            _mark(d.removed, path)
        elif not json_equal(lhs, rhs):
            _mark(d.modified, path)

    def _diff_children(
        self,
        lhs: Any,
        lpes: list[str],
        rhs: Any,
        rpes: list[str],
        kind: str,
        names: Names,
        path: Path,
        d: _Diff,
    ) -> None:
        if kind == "map":
            left: dict[str, Any] = lhs if isinstance(lhs, dict) else {}
            right: dict[str, Any] = rhs if isinstance(rhs, dict) else {}
            for key in dict.fromkeys([*left, *right]):
                child_names = self._child_names(names, key)
                if child_names is None:
                    continue
                lv = left.get(key, _MISSING)
                if lv is _MISSING and child_names in self._zero:
                    lv = None
                self.diff(lv, right.get(key, _MISSING), child_names, (*path, "f:" + key), d)
            return
        lgroups = _group(lhs if isinstance(lhs, list) else [], lpes)
        rgroups = _group(rhs if isinstance(rhs, list) else [], rpes)
        for pe in dict.fromkeys([*lpes, *rpes]):
            ls, rs = lgroups.get(pe, []), rgroups.get(pe, [])
            if len(ls) > 1 or len(rs) > 1:
                d.modified.add((*path, pe))
                continue
            self.diff(ls[0] if ls else _MISSING, rs[0] if rs else _MISSING, names, (*path, pe), d)

    # apply

    def merge(self, lhs: Any, rhs: Any, names: Names) -> Any:
        """Merges an applied value into a live one (maps by key, associative lists by item)."""
        rkind, rpes = self.kind(rhs, names)
        lkind, lpes = self.kind(lhs, names)
        if rkind == "map" and lkind == "map":
            out = dict(lhs)
            for key, value in rhs.items():
                live = lhs.get(key, _MISSING)
                out[key] = (
                    copy.deepcopy(value)
                    if live is _MISSING
                    else self.merge(live, value, (*names, key))
                )
            return out
        if rkind == "assoc" and lkind == "assoc":
            return _interleave(
                lhs, lpes, rhs, rpes, lambda left, right: self._merge_item(left, right, names)
            )
        return copy.deepcopy(rhs)

    def _merge_item(self, lhs: Any, rhs: Any, names: Names) -> Any:
        if lhs is _MISSING:
            return copy.deepcopy(rhs)
        if rhs is _MISSING:
            return lhs
        return self.merge(lhs, rhs, names)


def _mark(into: set[Path], path: Path) -> None:
    if path and path != _METADATA:
        into.add(path)


def _group(items: list[Any], pes: list[str]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for item, pe in zip(items, pes, strict=True):
        groups.setdefault(pe, []).append(item)
    return groups


def _interleave(
    lhs: list[Any],
    lpes: list[str],
    rhs: list[Any],
    rpes: list[str],
    merge_item: Callable[[Any, Any], Any],
) -> list[Any]:
    """structured-merge-diff's list merge: applied order wins for shared items, live-only
    items stay where they were relative to their neighbours."""
    left = dict(zip(reversed(lpes), reversed(lhs), strict=True))
    right = dict(zip(rpes, rhs, strict=True))
    shared = [pe for pe in rpes if pe in left]
    next_shared = shared.pop(0) if shared else None
    merged: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    while li < len(lpes) or ri < len(rpes):
        if li < len(lpes) and ri < len(rpes):
            pe = lpes[li]
            if pe == rpes[ri]:
                merged.add(pe)
                out.append(merge_item(left[pe], right[pe]))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in right and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lpes):
            pe = lpes[li]
            if pe not in right:
                out.append(merge_item(lhs[li], _MISSING))
                li += 1
                continue
            if pe in merged:
                li += 1
                continue
        if ri < len(rpes):
            pe = rpes[ri]
            merged.add(pe)
            out.append(merge_item(left.get(pe, _MISSING), right[pe]))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def field_set(obj: dict[str, Any], list_keys: ListKeys, *, subresource: str = "") -> FieldSet:
    """What an applied configuration claims: its leaves, list items and empty maps."""
    out: set[Path] = set()
    _Walker(list_keys, _ignored(subresource)).collect(obj, (), (), out)
    return FieldSet(out)


# --- managedFields entries --------------------------------------------------------------

_Key = tuple[str, str, str]  # manager, operation, subresource


@dataclass
class _Entry:
    manager: str
    operation: str
    subresource: str
    api_version: str
    time: str | None
    fields: FieldSet

    @property
    def key(self) -> _Key:
        return (self.manager, self.operation, self.subresource)

    def describe(self) -> str:
        """How upstream names a manager in conflict messages."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _decode(raw: Any) -> dict[_Key, _Entry] | None:
    """Entries by identity; None if `raw` is not a valid managedFields list."""
    if not isinstance(raw, list):
        return None
    entries: dict[_Key, _Entry] = {}
    try:
        for item in raw:
            if not isinstance(item, dict) or item.get("fieldsType", "FieldsV1") != "FieldsV1":
                return None
            fields_v1 = item.get("fieldsV1") or {}
            entry = _Entry(
                manager=str(item.get("manager", "")),
                operation=str(item.get("operation", "")),
                subresource=str(item.get("subresource", "")),
                api_version=str(item.get("apiVersion", "")),
                time=item.get("time") if isinstance(item.get("time"), str) else None,
                fields=from_fields_v1(fields_v1),
            )
            previous = entries.get(entry.key)
            if previous is not None:
                entry.fields = entry.fields | previous.fields
            entries[entry.key] = entry
    except ValueError:
        return None
    return entries


def _seconds(time: str | None) -> float:
    if not time:
        return 0.0
    try:
        return datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _encode(entries: Iterable[_Entry]) -> list[dict[str, Any]]:
    """Non-empty entries in upstream's order: Apply first, then oldest first."""
    kept = [e for e in entries if e.fields]
    kept.sort(
        key=lambda e: (
            e.operation,
            int(_seconds(e.time)),
            e.manager,
            e.api_version,
            e.subresource,
        )
    )
    return [e.encode() for e in kept]


def _managed(obj: dict[str, Any] | None) -> Any:
    if not isinstance(obj, dict):
        return None
    metadata = obj.get("metadata")
    return metadata.get("managedFields") if isinstance(metadata, dict) else None


def _without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return out


def _set_managed(obj: dict[str, Any], managed: list[dict[str, Any]]) -> None:
    metadata = obj.setdefault("metadata", {})
    if managed:
        metadata["managedFields"] = managed
    else:
        metadata.pop("managedFields", None)


def _entries_for_update(
    old: dict[str, Any] | None, new: dict[str, Any], subresource: str
) -> dict[_Key, _Entry]:
    """Like upstream's decodeLiveOrNew: a request may replace or reset managedFields."""
    live = _decode(_managed(old)) or {}
    if subresource:
        return live
    sent = _managed(new)
    if isinstance(sent, list) and (sent == [] or sent == [{}]):
        return {}
    if isinstance(sent, list) and sent:
        decoded = _decode(sent)
        if decoded:
            return decoded
    return live


def _diff(
    walker: _Walker, old: dict[str, Any] | None, new: dict[str, Any]
) -> tuple[FieldSet, FieldSet]:
    """(added or modified, removed) between two objects."""
    d = _Diff(set(), set(), set())
    walker.diff(_without_managed(old) if old is not None else {}, _without_managed(new), (), (), d)
    return FieldSet(d.added | d.modified), FieldSet(d.removed)


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    list_keys: ListKeys,
    now: str,
    subresource: str = "",
) -> list[dict[str, Any]]:
    """managedFields after a create, update or patch by `manager` (operation Update).

    `old` is None for a create. Whoever changed a field owns it from now on; removed
    fields are owned by nobody.
    """
    walker = _Walker(list_keys, _ignored(subresource), _zero(api_version))
    entries = _entries_for_update(old, new, subresource)
    changed, removed = _diff(walker, old, new)
    for entry in entries.values():
        entry.fields = entry.fields - changed - removed
    if changed:
        key = (manager, "Update", subresource)
        previous = entries.get(key)
        entries[key] = _Entry(
            manager=manager,
            operation="Update",
            subresource=subresource,
            api_version=api_version,
            time=now,
            fields=changed | previous.fields if previous else changed,
        )
    return _encode(entries.values())


# --- Server-side apply ------------------------------------------------------------------


def _strip_nulls(value: Any) -> Any:
    """Applied nulls say nothing: they neither set nor claim a field."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _matches(item: Any, pe: str) -> bool:
    if pe.startswith("v:"):
        try:
            return json_equal(item, json.loads(pe[2:]))
        except ValueError:
            return False
    keys = _pe_keys(pe)
    return bool(keys) and _item_pe(item, keys) == pe


def _step(node: Any, pe: str) -> Any:
    if pe.startswith("f:"):
        return node.get(pe[2:], _MISSING) if isinstance(node, dict) else _MISSING
    if isinstance(node, list):
        for item in node:
            if _matches(item, pe):
                return item
    return _MISSING


def _remove(obj: dict[str, Any], path: Path) -> None:
    node: Any = obj
    for pe in path[:-1]:
        node = _step(node, pe)
        if node is _MISSING:
            return
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(node, dict):
            node.pop(last[2:], None)
    elif isinstance(node, list):
        node[:] = [item for item in node if not _matches(item, last)]


_PROTECTED: Final = FieldSet(
    {("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:namespace")}
)


def _prune(merged: dict[str, Any], last: FieldSet, entries: Iterable[_Entry]) -> dict[str, Any]:
    """Removes what this applier set before, no longer sets, and nobody else owns.

    Like upstream, a named field whose contents the applier owned goes with them once
    nothing under it is owned any more.
    """
    owned = _PROTECTED
    for entry in entries:
        owned = owned | entry.fields
    keep = owned.prefixes()
    candidates: set[Path] = set()
    for path in last:
        for i in range(1, len(path) + 1):
            if i == len(path) or path[i - 1].startswith("f:"):
                candidates.add(path[:i])
    doomed: set[Path] = set()
    for path in sorted(candidates - keep, key=len):
        if any(path[:i] in doomed for i in range(1, len(path))):
            continue
        parent = path[-2] if len(path) >= 2 else ""
        if path[-1].startswith("f:") and path[-1][2:] in _pe_keys(parent):
            continue  # an item that stays keeps its key fields
        doomed.add(path)
    for path in sorted(doomed, key=len, reverse=True):
        _remove(merged, path)
    return merged


def _conflict_error(conflicts: dict[_Key, FieldSet], entries: dict[_Key, _Entry]) -> StatusError:
    ordered = sorted(conflicts, key=lambda k: (k[0], k[1], entries[k].api_version, k[2]))
    pairs = [(entries[k], field) for k in ordered for field in conflicts[k].render()]
    causes = [
        Cause(
            field=field, message=f"conflict with {entry.describe()}", reason="FieldManagerConflict"
        )
        for entry, field in pairs
    ]
    if len(pairs) == 1:
        entry, field = pairs[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {field}"
    else:
        lines: list[str] = []
        for key in ordered:
            lines.append(f"conflicts with {entries[key].describe()}:")
            lines.extend(f"- {field}" for field in conflicts[key].render())
        message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": [c.to_dict() for c in causes]})


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    list_keys: ListKeys,
    now: str,
    subresource: str = "",
) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: a create).

    Fields the request cannot change (spec through the status subresource) are kept from
    live; status sent to the main resource is merged, for kinds without a status
    subresource, and left for the caller to reset otherwise.
    """
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    sent_version = applied.get("apiVersion")
    if isinstance(sent_version, str) and sent_version and sent_version != api_version:
        raise bad_request(
            "Incorrect version specified in apply patch. Specified patch version: "
            f"{sent_version}, expected: {api_version}"
        )
    config: dict[str, Any] = _strip_nulls(applied)
    if subresource == "status":
        config.pop("spec", None)
    walker = _Walker(list_keys, _ignored(subresource), _zero(api_version))
    out: set[Path] = set()
    walker.collect(config, (), (), out)
    applied_set = FieldSet(out)
    key = (manager, "Apply", subresource)

    if live is None:
        result = copy.deepcopy(config)
        entry = _Entry(manager, "Apply", subresource, api_version, now, applied_set)
        _set_managed(result, _encode([entry]))
        return result

    entries = _decode(_managed(live)) or {}
    previous = entries.get(key)
    live_body = _without_managed(live)
    merged: dict[str, Any] = walker.merge(live_body, config, ())
    entries[key] = _Entry(manager, "Apply", subresource, api_version, now, applied_set)
    if previous is not None:
        merged = _prune(merged, previous.fields, entries.values())

    changed, removed = _diff(walker, live_body, merged)
    conflicts: dict[_Key, FieldSet] = {}
    for other_key, entry in entries.items():
        if other_key != key and (clash := entry.fields & changed):
            conflicts[other_key] = clash
    if conflicts and not force:
        raise _conflict_error(conflicts, entries)
    for other_key, entry in entries.items():
        if other_key != key:
            entry.fields = entry.fields - changed - removed
    if previous is not None and previous.fields == applied_set and json_equal(live_body, merged):
        entries[key].time = previous.time
    _set_managed(merged, _encode(entries.values()))
    return merged
