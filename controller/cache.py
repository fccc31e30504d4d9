"""The informer's local cache: objects by key, with secondary indexes.

Copy strategy: the cache owns the JSON dicts it is given and never mutates one after
storing it (an update replaces the entry). That makes two cheap read paths safe:

- `get_readonly`/`list_readonly`/`by_index_readonly` return `FrozenDict` views: a
  shallow copy of the top level only, nested objects and arrays wrapped as they are
  read, every mutator raising TypeError. They are `dict`s (so they fit every
  `dict[str, Any]` signature and `json.dumps`) and stay valid snapshots after the entry
  is replaced or deleted. Event handlers and index functions receive these.
- `get`/`list`/`by_index` return private deep copies for callers that want to edit and
  send an object back; the copier is JSON-specific (about 3x faster than
  `copy.deepcopy`) and runs only when asked.

Everything here is synchronous and meant for one event loop: no locks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, NoReturn, SupportsIndex, overload

Obj = dict[str, Any]
ObjList = list[dict[str, Any]]
IndexFunc = Callable[[Obj], list[str]]

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "owner_uid"

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


# ---- read-only views


def _read_only(*args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError("cached objects are read-only: use .thaw() or copy.deepcopy() for a copy")


class FrozenDict(dict[str, Any]):
    """A read-only view of a cached JSON object; nested values come back frozen too.

    Overriding `__iter__`/`keys` keeps CPython off its raw-dict fast paths, so
    `dict(view)` and `{**view}` also see frozen nested values. `copy()` and
    `copy.deepcopy()` return mutable deep copies.
    """

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        return freeze(dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        return freeze(dict.get(self, key, default))

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self)

    def keys(self) -> Any:
        return dict.keys(self)

    def values(self) -> Any:
        return [freeze(v) for v in dict.values(self)]

    def items(self) -> Any:
        return [(k, freeze(v)) for k, v in dict.items(self)]

    def thaw(self) -> Obj:
        """A private, mutable deep copy (e.g. to edit and send back to the server)."""
        return _copy_dict(self)

    def copy(self) -> Obj:
        return _copy_dict(self)

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Obj:
        return _copy_dict(self)

    def __or__(self, other: Any) -> Any:
        return _copy_dict(self) | thaw(other)

    def __ror__(self, other: Any) -> Any:
        return thaw(other) | _copy_dict(self)

    def __reduce__(self) -> Any:
        return (dict, (_copy_dict(self),))

    __setitem__ = _read_only
    __delitem__ = _read_only
    __ior__ = _read_only
    clear = _read_only
    pop = _read_only
    popitem = _read_only
    setdefault = _read_only
    update = _read_only


class FrozenList(list[Any]):
    """A read-only view of a cached JSON array; `copy()` returns a mutable deep copy."""

    __slots__ = ()

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> FrozenList: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        if isinstance(index, slice):
            return FrozenList(list.__getitem__(self, index))
        return freeze(list.__getitem__(self, index))

    def __iter__(self) -> Iterator[Any]:
        return (freeze(v) for v in list.__iter__(self))

    def __reversed__(self) -> Iterator[Any]:
        return (freeze(v) for v in list.__reversed__(self))

    def thaw(self) -> list[Any]:
        return _copy_list(self)

    def copy(self) -> list[Any]:
        return _copy_list(self)

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return _copy_list(self)

    def __add__(self, other: Any) -> Any:
        return _copy_list(self) + thaw(other)

    def __radd__(self, other: Any) -> Any:
        return thaw(other) + _copy_list(self)

    def __mul__(self, n: SupportsIndex) -> Any:
        return _copy_list(self) * n

    __rmul__ = __mul__

    def __reduce__(self) -> Any:
        return (list, (_copy_list(self),))

    __setitem__ = _read_only
    __delitem__ = _read_only
    __iadd__ = _read_only
    __imul__ = _read_only
    append = _read_only
    extend = _read_only
    insert = _read_only
    remove = _read_only
    pop = _read_only
    clear = _read_only
    sort = _read_only
    reverse = _read_only


def freeze(value: Any) -> Any:
    """A read-only view of a JSON value; scalars and views are returned as they are."""
    cls = type(value)
    if cls is dict:
        return FrozenDict(value)
    if cls is list:
        return FrozenList(value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of a JSON value, frozen or not."""
    if isinstance(value, dict):
        return _copy_dict(value)
    if isinstance(value, list):
        return _copy_list(value)
    return value


def _copy_dict(data: Obj) -> Obj:
    # Specialised for JSON trees: no memo, no reduce protocol, scalars shared. `dict.items`
    # rather than `data.items()` so frozen views are read raw (and not re-wrapped).
    return {
        k: (_copy_dict(v) if isinstance(v, dict) else _copy_list(v) if isinstance(v, list) else v)
        for k, v in dict.items(data)
    }


def _copy_list(data: list[Any]) -> list[Any]:
    return [
        (_copy_dict(v) if isinstance(v, dict) else _copy_list(v) if isinstance(v, list) else v)
        for v in list.__iter__(data)
    ]


# ---- keys and index functions


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (client-go's cache key)."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def split_key(key: str) -> tuple[str | None, str]:
    """The inverse of `object_key`: (namespace or None, name)."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, key)


def index_by_namespace(obj: Obj) -> list[str]:
    namespace = obj["metadata"].get("namespace")
    return [namespace] if namespace else []


def index_by_owner_uid(obj: Obj) -> list[str]:
    refs = obj["metadata"].get("ownerReferences") or ()
    return [ref["uid"] for ref in refs if ref.get("uid")]


# ---- the store


class Change(NamedTuple):
    """One difference a store update made: ADDED (old None), MODIFIED, or DELETED (new None)."""

    type: str
    old: FrozenDict | None
    new: FrozenDict | None


# Aliases, because inside `Indexer` the name `list` is the method.
Views = list[FrozenDict]
Changes = list[Change]
Keys = list[str]
_IndexValues = list[tuple[str, list[str]]]


class Indexer:
    """Objects by key plus named indexes (index name -> value -> keys).

    The store takes ownership of dicts passed to `replace`/`upsert`: callers must not
    modify them afterwards. Index functions must be pure functions of the object.
    """

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._funcs: dict[str, IndexFunc] = {
            NAMESPACE_INDEX: index_by_namespace,
            OWNER_UID_INDEX: index_by_owner_uid,
        }
        self._indices: dict[str, dict[str, set[str]]] = {}
        for name in self._funcs:
            self._indices[name] = {}
        for name, fn in (indexers or {}).items():
            self.add_index(name, fn)
        self.resource_version = ""

    # ---- indexes

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Adds an index, built at once over the objects already cached."""
        if name in self._funcs:
            raise ValueError(f"index {name!r} already exists")
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in fn(FrozenDict(obj)):
                index.setdefault(value, set()).add(key)
        self._funcs[name] = fn
        self._indices[name] = index

    @property
    def index_names(self) -> Keys:
        return list(self._funcs)

    def index_keys(self, name: str, value: str) -> Keys:
        """Keys of the objects whose index `name` yields `value`, sorted."""
        try:
            index = self._indices[name]
        except KeyError:
            raise KeyError(f"no index named {name!r}") from None
        return sorted(index.get(value, ()))

    def by_index(self, name: str, value: str) -> ObjList:
        return [_copy_dict(self._items[key]) for key in self.index_keys(name, value)]

    def by_index_readonly(self, name: str, value: str) -> Views:
        return [FrozenDict(self._items[key]) for key in self.index_keys(name, value)]

    # ---- reads

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> Keys:
        return list(self._items)

    def get(self, key: str) -> Obj | None:
        """A private deep copy of the cached object, or None."""
        obj = self._items.get(key)
        return None if obj is None else _copy_dict(obj)

    def get_readonly(self, key: str) -> FrozenDict | None:
        obj = self._items.get(key)
        return None if obj is None else FrozenDict(obj)

    def list(self) -> ObjList:
        return [_copy_dict(obj) for obj in self._items.values()]

    def list_readonly(self) -> Views:
        return [FrozenDict(obj) for obj in self._items.values()]

    # ---- writes

    def upsert(self, obj: Obj) -> FrozenDict | None:
        """Adds or replaces the object; returns the previous version, if any."""
        key = object_key(obj)
        new_values = self._index_values(
            obj
        )  # before any change: a raising index fn leaves us intact
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, new_values)
        return None if old is None else FrozenDict(old)

    def delete(self, obj: Mapping[str, Any]) -> FrozenDict | None:
        """Removes the object with this one's key; returns what was cached, if anything."""
        return self.delete_key(object_key(obj))

    def delete_key(self, key: str) -> FrozenDict | None:
        old = self._items.pop(key, None)
        if old is None:
            return None
        self._unindex(key, old)
        return FrozenDict(old)

    def replace(self, objects: Iterable[Obj], resource_version: str) -> Changes:
        """Swaps in a full listing; returns what differs from the previous contents.

        An object counts as modified when its resourceVersion changed; one whose uid
        changed (deleted and recreated under the same name) is a DELETED then an ADDED.
        Vanished objects come back as DELETED with their last cached state.
        """
        items: dict[str, Obj] = {}
        for obj in objects:
            items[object_key(obj)] = obj
        indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._funcs}
        for key, obj in items.items():
            for name, fn in self._funcs.items():
                index = indices[name]
                for value in fn(FrozenDict(obj)):
                    index.setdefault(value, set()).add(key)

        changes: Changes = []
        previous = self._items
        for key, obj in items.items():
            old = previous.get(key)
            if old is None:
                changes.append(Change(ADDED, None, FrozenDict(obj)))
            elif _uid(old) != _uid(obj):
                changes.append(Change(DELETED, FrozenDict(old), None))
                changes.append(Change(ADDED, None, FrozenDict(obj)))
            elif _changed(old, obj):
                changes.append(Change(MODIFIED, FrozenDict(old), FrozenDict(obj)))
        for key, old in previous.items():
            if key not in items:
                changes.append(Change(DELETED, FrozenDict(old), None))

        self._items = items
        self._indices = indices
        self.resource_version = resource_version
        return changes

    # ---- internals

    def _index_values(self, obj: Obj) -> _IndexValues:
        view = FrozenDict(obj)
        return [(name, fn(view)) for name, fn in self._funcs.items()]

    def _index(self, key: str, values: _IndexValues) -> None:
        for name, found in values:
            index = self._indices[name]
            for value in found:
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, found in self._index_values(obj):
            index = self._indices[name]
            for value in found:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


def _uid(obj: Obj) -> Any:
    return (obj.get("metadata") or {}).get("uid")


def _changed(old: Obj, new: Obj) -> bool:
    old_rv = (old.get("metadata") or {}).get("resourceVersion")
    new_rv = (new.get("metadata") or {}).get("resourceVersion")
    if old_rv and new_rv:
        return bool(old_rv != new_rv)
    return old != new
