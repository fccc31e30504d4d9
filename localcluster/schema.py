"""Structural-schema pruning, defaulting and validation, and ObjectMeta validation.

Custom resources go through the same three steps as in kube-apiserver: unknown fields are
pruned, `default`s are applied, then the object is validated against its CRD's
`openAPIV3Schema`. Messages copy kube-apiserver's wording because users read them verbatim in
kubectl output and tools match on them.

Not implemented: `x-kubernetes-validations` (CEL rules are not evaluated) and ratcheting.
Patterns use Python's `re` after a light RE2 translation (`$` and `\\z` mean end of text);
RE2-only syntax such as `\\p{L}` or `[[:alpha:]]` is not understood.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeGuard

from localcluster.errors import Cause

__all__ = [
    "SchemaOutcome",
    "default_prune_validate",
    "validate_dns_label",
    "validate_metadata",
]

INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"

PRESERVE = "x-kubernetes-preserve-unknown-fields"
EMBEDDED = "x-kubernetes-embedded-resource"
INT_OR_STRING = "x-kubernetes-int-or-string"
LIST_TYPE = "x-kubernetes-list-type"
LIST_MAP_KEYS = "x-kubernetes-list-map-keys"

_RESOURCE_KEYS = frozenset({"apiVersion", "kind", "metadata"})
_ANNOTATIONS_LIMIT = 256 * 1024


@dataclass
class SchemaOutcome:
    """What a request body turned into: its field errors and the fields pruned from it."""

    causes: list[Cause] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)


def default_prune_validate(
    obj: dict[str, Any], schema: dict[str, Any], *, embedded_root: bool = True
) -> SchemaOutcome:
    """Prune, default, then validate `obj` in place, in kube-apiserver's order.

    Validation sees the defaulted object so a default can satisfy `required`; pruning comes
    first so a default is never applied below a field that is about to disappear.
    `embedded_root` marks a whole resource: apiVersion/kind/metadata are always kept and
    metadata is left to `validate_metadata`.
    """
    outcome = SchemaOutcome()
    _prune(obj, schema, "", outcome.unknown_fields, root=embedded_root)
    _default(obj, schema, root=embedded_root)
    _validate(obj, schema, "", outcome.causes, root=embedded_root)
    return outcome


# --- paths and rendering ------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _where(path: str) -> str:
    """The `<path> in body` subject of kube-openapi's messages."""
    return f"{path} in body" if path else "body"


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def _go_quote(text: str) -> str:
    """Go's `%q`, which upstream uses for every string it puts in a message."""
    parts = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            parts.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            parts.append(ch)
        elif ord(ch) < 0x80:
            parts.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(f"\\U{ord(ch):08x}")
    parts.append('"')
    return "".join(parts)


def _go_float(value: float) -> str:
    """Go's `%v` for a float64 (shortest digits, exponent form from 1e+06 on)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent
    digits = digits.rstrip("0")
    neg = "-" if sign else ""
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mantissa}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return neg + digits + "0" * (point - len(digits))
    return f"{neg}{digits[:point]}.{digits[point:]}"


def _bound(value: float) -> str:
    """A numeric schema bound as upstream prints it: a float64, so 1000000 reads `1e+06`."""
    return _go_float(float(value))


def _render(value: Any) -> str:
    """The bad value of a field error, as `field.Error` prints it."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _go_quote(value)
    return _go_quote(_json_type(value))


def _go_sharp(value: Any) -> str:
    """Go's `%#v` of an unstructured value, which upstream uses for duplicate map keys."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, dict):
        inner = ", ".join(f"{_go_quote(str(k))}:{_go_sharp(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_sharp(v) for v in value) + "}"
    return _render(value)


def _normalize(value: Any) -> Any:
    """Integral floats become ints so 1 and 1.0 compare and print alike, as in Go's JSON."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    """A JSON-equality key; keeps `true` and `1` apart, unlike Python's `==`."""
    return json.dumps(
        _normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_number(value: Any) -> TypeGuard[int | float]:
    """JSON numbers; bool is an int subclass in Python but not a number in JSON."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {_render(value)}: {detail}", INVALID)


def _type_error(path: str, value: Any, expected: str) -> Cause:
    actual = _json_type(value)
    message = f"Invalid value: {_go_quote(actual)}: {_where(path)} must be of type {expected}: "
    return Cause(path, message + _go_quote(actual), TYPE_INVALID)


# --- schema access ------------------------------------------------------------------------


def _properties(schema: dict[str, Any] | None) -> dict[str, Any]:
    props = schema.get("properties") if schema else None
    return props if isinstance(props, dict) else {}


def _items(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    items = schema.get("items") if schema else None
    return items if isinstance(items, dict) else None


def _additional(schema: dict[str, Any] | None) -> dict[str, Any] | bool | None:
    extra = schema.get("additionalProperties") if schema else None
    return extra if isinstance(extra, dict | bool) else None


def _null_to_default(value: Any, schema: dict[str, Any]) -> bool:
    """A null for a non-nullable field with a default is replaced, as upstream does."""
    return value is None and not schema.get("nullable") and schema.get("default") is not None


# --- pruning ------------------------------------------------------------------------------


def _prune(
    value: Any, schema: dict[str, Any] | None, path: str, pruned: list[str], *, root: bool = False
) -> None:
    if isinstance(value, dict):
        _prune_object(value, schema, path, pruned, root=root)
    elif isinstance(value, list):
        items = _items(schema)
        if items is None and schema is not None and schema.get(PRESERVE):
            return
        for i, item in enumerate(value):
            _prune(item, items, f"{path}[{i}]", pruned)


def _prune_object(
    obj: dict[str, Any], schema: dict[str, Any] | None, path: str, pruned: list[str], *, root: bool
) -> None:
    props = _properties(schema)
    extra = _additional(schema)
    keep_unknown = extra is True or bool(schema and schema.get(PRESERVE))
    resource = root or bool(schema and schema.get(EMBEDDED))
    for key in list(obj):
        child = _join(path, key)
        if resource and key in _RESOURCE_KEYS:
            continue
        if key in props:
            _prune(obj[key], props[key], child, pruned)
        elif isinstance(extra, dict):
            _prune(obj[key], extra, child, pruned)
        elif not keep_unknown:
            del obj[key]
            pruned.append(child)


# --- defaulting ---------------------------------------------------------------------------


def _default(value: Any, schema: dict[str, Any] | None, *, root: bool = False) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        _default_object(value, schema, root=root)
    elif isinstance(value, list):
        items = _items(schema)
        if items is None:
            return
        for i, item in enumerate(value):
            if _null_to_default(item, items):
                value[i] = copy.deepcopy(items["default"])
            _default(value[i], items)


def _default_object(obj: dict[str, Any], schema: dict[str, Any], *, root: bool) -> None:
    props = _properties(schema)
    for key, prop in props.items():
        if (root and key == "metadata") or not isinstance(prop, dict):
            continue
        if prop.get("default") is not None and (key not in obj or _null_to_default(obj[key], prop)):
            obj[key] = copy.deepcopy(prop["default"])
    extra = _additional(schema)
    for key in list(obj):
        if root and key == "metadata":
            continue
        if key in props:
            _default(obj[key], props[key])
        elif isinstance(extra, dict):
            if _null_to_default(obj[key], extra):
                obj[key] = copy.deepcopy(extra["default"])
            _default(obj[key], extra)


# --- validation ---------------------------------------------------------------------------


def _validate(
    value: Any, schema: dict[str, Any], path: str, out: list[Cause], *, root: bool = False
) -> None:
    if value is None and schema.get("nullable"):
        return
    _check_type(value, schema, path, out)
    _check_enum(value, schema, path, out)
    if value is None:
        return
    if isinstance(value, str):
        _check_string(value, schema, path, out)
    elif _is_number(value):
        _check_number(value, schema, path, out)
    elif isinstance(value, dict):
        _check_object(value, schema, path, out, root=root)
    elif isinstance(value, list):
        _check_array(value, schema, path, out)
    _check_combinators(value, schema, path, out)
    if isinstance(value, dict):
        _validate_members(value, schema, path, out, root=root)
    elif isinstance(value, list) and (items := _items(schema)) is not None:
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", out)


def _declared_types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str) and declared:
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    if schema.get(INT_OR_STRING):
        return ["integer", "string"]
    return []


def _has_type(value: Any, name: str) -> bool:
    if name == "integer":
        whole_float = isinstance(value, float) and value.is_integer()
        return whole_float or (isinstance(value, int) and not isinstance(value, bool))
    if name == "number":
        return _is_number(value)
    if name == "null":
        return value is None
    return _json_type(value) == name


def _check_type(value: Any, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    types = _declared_types(schema)
    if types and not any(_has_type(value, t) for t in types):
        out.append(_type_error(path, value, ",".join(types)))


def _check_enum(value: Any, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    allowed = schema.get("enum")
    if not isinstance(allowed, list) or not allowed:
        return
    if _canonical(value) in {_canonical(a) for a in allowed}:
        return
    choices = ", ".join(_go_quote(a if isinstance(a, str) else _canonical(a)) for a in allowed)
    message = f"Unsupported value: {_render(value)}: supported values: {choices}"
    out.append(Cause(path, message, NOT_SUPPORTED))


def _check_string(value: str, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and len(value) > max_length:
        out.append(Cause(path, f"Too long: may not be more than {max_length} bytes", TOO_LONG))
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        detail = f"{_where(path)} should be at least {min_length} chars long"
        out.append(_invalid(path, value, detail))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        compiled = _compile(pattern)
        if isinstance(compiled, str):
            detail = f"{_where(path)} should match '{pattern}, but pattern is invalid: {compiled}'"
            out.append(_invalid(path, "", detail))
        elif not compiled.search(value):
            out.append(_invalid(path, value, f"{_where(path)} should match '{pattern}'"))
    fmt = schema.get("format")
    checker = _STRING_FORMATS.get(fmt) if isinstance(fmt, str) else None
    if checker is not None and not checker(value):
        detail = f"{_where(path)} must be of type {fmt}: {_go_quote(value)}"
        out.append(_invalid(path, value, detail))


def _check_number(value: float, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    where = _where(path)
    factor = schema.get("multipleOf")
    if _is_number(factor) and factor != 0 and not _is_multiple(value, factor):
        out.append(_invalid(path, value, f"{where} should be a multiple of {_bound(factor)}"))
    high = schema.get("maximum")
    if _is_number(high):
        exclusive = schema.get("exclusiveMaximum") is True
        if value > high or (exclusive and value == high):
            relation = "less than" if exclusive else "less than or equal to"
            out.append(_invalid(path, value, f"{where} should be {relation} {_bound(high)}"))
    low = schema.get("minimum")
    if _is_number(low):
        exclusive = schema.get("exclusiveMinimum") is True
        if value < low or (exclusive and value == low):
            relation = "greater than" if exclusive else "greater than or equal to"
            out.append(_invalid(path, value, f"{where} should be {relation} {_bound(low)}"))
    fmt = schema.get("format")
    bits = {"int32": 32, "int64": 64}.get(fmt) if isinstance(fmt, str) else None
    if bits and isinstance(value, int) and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        out.append(_invalid(path, value, f"{where} must be of type {fmt}"))


def _is_multiple(value: float, factor: float) -> bool:
    if isinstance(value, int) and isinstance(factor, int):
        return value % factor == 0
    quotient = value / factor
    return math.isfinite(quotient) and abs(quotient - round(quotient)) < 1e-9


def _check_object(
    obj: dict[str, Any], schema: dict[str, Any], path: str, out: list[Cause], *, root: bool
) -> None:
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in obj and not (root and name == "metadata"):
            out.append(Cause(_join(path, name), "Required value", REQUIRED))
    count = len(obj)
    most = schema.get("maxProperties")
    if isinstance(most, int) and count > most:
        out.append(Cause(path, f"Too many: {count}: must have at most {most} items", TOO_MANY))
    least = schema.get("minProperties")
    if isinstance(least, int) and count < least:
        detail = f"{_where(path)} should have at least {least} properties"
        out.append(_invalid(path, count, detail))
    if schema.get(EMBEDDED) and not root:
        _check_embedded(obj, path, out)


def _validate_members(
    obj: dict[str, Any], schema: dict[str, Any], path: str, out: list[Cause], *, root: bool
) -> None:
    props = _properties(schema)
    extra = _additional(schema)
    for key, child in obj.items():
        if root and key == "metadata":
            continue
        sub = props.get(key) if key in props else extra
        if isinstance(sub, dict):
            _validate(child, sub, _join(path, key), out)


def _check_array(items: list[Any], schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    count = len(items)
    most = schema.get("maxItems")
    if isinstance(most, int) and count > most:
        out.append(Cause(path, f"Too many: {count}: must have at most {most} items", TOO_MANY))
    least = schema.get("minItems")
    if isinstance(least, int) and count < least:
        detail = f"{_where(path)} should have at least {least} items"
        out.append(_invalid(path, count, detail))
    if schema.get("uniqueItems") is True and len({_canonical(v) for v in items}) != count:
        out.append(_invalid(path, items, f"{_where(path)} shouldn't contain duplicates"))
    list_type = schema.get(LIST_TYPE)
    if list_type == "set":
        for i in _second_occurrences(items):
            out.append(Cause(f"{path}[{i}]", f"Duplicate value: {_go_sharp(items[i])}", DUPLICATE))
    elif list_type == "map":
        keys = schema.get(LIST_MAP_KEYS)
        _check_list_map(items, keys if isinstance(keys, list) else [], path, out)


def _second_occurrences(values: list[Any]) -> list[int]:
    """Indexes where a value is seen for the second time; upstream reports only those."""
    seen: dict[str, int] = {}
    found = []
    for i, value in enumerate(values):
        key = _canonical(value)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            found.append(i)
    return found


def _check_list_map(items: list[Any], keys: list[Any], path: str, out: list[Cause]) -> None:
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, dict):
            detail = "must be an object for an array of list-type map"
            out.append(_invalid(f"{path}[{i}]", item, detail))
            return
    identities = [
        {k: item[k] for k in keys if isinstance(item, dict) and k in item} for item in items
    ]
    for i in _second_occurrences(identities):
        message = f"Duplicate value: {_go_sharp(identities[i])}"
        out.append(Cause(f"{path}[{i}]", message, DUPLICATE))


def _check_combinators(value: Any, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    """allOf reports its branches' errors; anyOf/oneOf/not report one error at the field."""
    for sub in _subschemas(schema, "allOf"):
        _validate(value, sub, path, out)
    any_of = _subschemas(schema, "anyOf")
    if any_of and not any(_passes(value, sub, path) for sub in any_of):
        detail = f"{_where(path)} must validate at least one schema (anyOf)"
        out.append(_invalid(path, value, detail))
    one_of = _subschemas(schema, "oneOf")
    if one_of and sum(_passes(value, sub, path) for sub in one_of) != 1:
        detail = f"{_where(path)} must validate one and only one schema (oneOf)"
        out.append(_invalid(path, value, detail))
    negated = schema.get("not")
    if isinstance(negated, dict) and _passes(value, negated, path):
        out.append(_invalid(path, value, f"{_where(path)} must not validate the schema (not)"))


def _subschemas(schema: dict[str, Any], keyword: str) -> list[dict[str, Any]]:
    subs = schema.get(keyword)
    return [s for s in subs if isinstance(s, dict)] if isinstance(subs, list) else []


def _passes(value: Any, schema: dict[str, Any], path: str) -> bool:
    scratch: list[Cause] = []
    _validate(value, schema, path, scratch)
    return not scratch


def _check_embedded(obj: dict[str, Any], path: str, out: list[Cause]) -> None:
    """apiVersion/kind/metadata of an embedded object, checked as upstream's objectmeta does."""
    for key in ("apiVersion", "kind"):
        if key not in obj:
            out.append(Cause(_join(path, key), "Required value: must not be empty", REQUIRED))
    for key, problem in (
        ("apiVersion", _api_version_problem),
        ("kind", _kind_problem),
    ):
        if key in obj and (detail := problem(obj[key])):
            out.append(_invalid(_join(path, key), obj[key], detail))
    meta = obj.get("metadata")
    meta_path = _join(path, "metadata")
    if isinstance(meta, dict):
        out.extend(_meta_causes(meta, meta_path, namespaced=False, name_required=False))
    elif "metadata" in obj and meta is not None:
        out.append(_type_error(meta_path, meta, "object"))


def _api_version_problem(value: Any) -> str:
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if value.count("/") > 1:
        return f"unexpected GroupVersion string: {value}"
    return ""


def _kind_problem(value: Any) -> str:
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    errors = _dns1035_label_errors(value.lower())
    return "may have mixed case, but should otherwise match: " + ",".join(errors) if errors else ""


# --- regular expressions ------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | str:
    """The compiled pattern, or the reason it does not compile."""
    try:
        return re.compile(_from_re2(pattern))
    except re.error as exc:
        return f"error parsing regexp: {exc}"


def _from_re2(pattern: str) -> str:
    """Give `$` and `\\z` RE2's meaning (end of text) unless the pattern asks for multi-line."""
    multiline = re.match(r"\(\?[a-zA-Z]*m", pattern) is not None
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            pair = pattern[i : i + 2]
            out.append("\\Z" if pair == "\\z" and not in_class else pair)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append("\\Z" if ch == "$" and not in_class and not multiline else ch)
        i += 1
    return "".join(out)


# --- formats ------------------------------------------------------------------------------

_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?"
)
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_EMAIL = re.compile(r"[^\s@<>]+@[^\s@<>.]+(\.[^\s@<>.]+)*")
_NAMED_EMAIL = re.compile(r"[^<>]*<([^<>]+)>")
_GO_DURATION = re.compile(r"[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+|[-+]?0", re.ASCII)
_LOOSE_DURATION = re.compile(r"(\d+)\s*([A-Za-zµ]+)", re.ASCII)
_DURATION_UNITS = (
    ("ns", "nanos"),
    ("us", "µs", "micros"),
    ("ms", "millis"),
    ("s", "sec"),
    ("m", "min"),
    ("h", "hr", "hour"),
    ("d", "day"),
    ("w", "wk", "week"),
)
_HOST_LABEL = re.compile(r"[^\W_]((?:[^\W_]|-)*[^\W_])?")
_MAC = re.compile(
    r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}|([0-9A-Fa-f]{2}[:-]){7}[0-9A-Fa-f]{2}"
    r"|([0-9A-Fa-f]{2}[:-]){19}[0-9A-Fa-f]{2}|([0-9A-Fa-f]{4}\.){2,9}[0-9A-Fa-f]{4}"
)


def _is_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_date_time(text: str) -> bool:
    """RFC 3339, plus the zone-less and space-separated forms go-openapi's strfmt accepts."""
    match = _DATE_TIME.fullmatch(text)
    if match is None or not _is_date(match.group(1)):
        return False
    hour, minute, second = (int(match.group(n)) for n in (2, 3, 4))
    zone = match.group(6) or ""
    zone_ok = len(zone) <= 1 or (int(zone[1:3]) < 24 and int(zone[-2:]) < 60)
    return hour < 24 and minute < 60 and second < 60 and zone_ok


def _is_duration(text: str) -> bool:
    """Go's time.ParseDuration syntax, or strfmt's looser `3 days`/`1 hour` forms."""
    if _GO_DURATION.fullmatch(text):
        return True
    for _, unit in _LOOSE_DURATION.findall(text):
        unit = unit.lower()
        for variants in _DURATION_UNITS:
            if unit in variants[:-1] or unit.startswith(variants[-1]):
                return True
    return False


def _is_byte(text: str) -> bool:
    try:
        base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _parse_ip(text: str) -> bool:
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_cidr(text: str) -> bool:
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isdigit() or not _parse_ip(address):
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _is_email(text: str) -> bool:
    named = _NAMED_EMAIL.fullmatch(text)
    return _EMAIL.fullmatch(named.group(1) if named else text) is not None


def _is_hostname(text: str) -> bool:
    labels = text.split(".")
    return len(text.encode()) <= 255 and all(
        len(label.encode()) <= 63 and _HOST_LABEL.fullmatch(label) for label in labels
    )


def _is_uri(text: str) -> bool:
    """Go's url.ParseRequestURI: an absolute URI or an absolute path, no control bytes."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        return False
    return text.startswith("/") or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:.", text) is not None


_STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "date": _is_date,
    "duration": _is_duration,
    "byte": _is_byte,
    "uuid": lambda s: _UUID.fullmatch(s) is not None,
    "email": _is_email,
    "hostname": _is_hostname,
    "ipv4": lambda s: _parse_ip(s) and "." in s,
    "ipv6": lambda s: _parse_ip(s) and ":" in s,
    "cidr": _is_cidr,
    "mac": lambda s: _MAC.fullmatch(s) is not None,
    "uri": _is_uri,
}


# --- object metadata ----------------------------------------------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, including its odd `'a',  or 'b'` spacing."""
    shown = "".join(f"{' or ' if i else ''}'{example}', " for i, example in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _pattern_errors(value: str, fmt: str, max_len: int, regex_error: str) -> list[str]:
    errors = [_max_len_error(max_len)] if len(value.encode()) > max_len else []
    if re.fullmatch(fmt, value, re.ASCII) is None:
        errors.append(regex_error)
    return errors


def _dns1123_label_errors(value: str) -> list[str]:
    regex_error = _regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc")
    return _pattern_errors(value, _DNS1123_LABEL_FMT, 63, regex_error)


def _dns1123_subdomain_errors(value: str) -> list[str]:
    regex_error = _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com")
    return _pattern_errors(value, _DNS1123_SUBDOMAIN_FMT, 253, regex_error)


def _dns1035_label_errors(value: str) -> list[str]:
    regex_error = _regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123")
    return _pattern_errors(value, _DNS1035_LABEL_FMT, 63, regex_error)


def _label_value_errors(value: str) -> list[str]:
    regex_error = _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
    return _pattern_errors(value, _LABEL_VALUE_FMT, 63, regex_error)


def _qualified_name_errors(value: str) -> list[str]:
    """apimachinery's IsQualifiedName: `[prefix/]name` as used by label keys and finalizers."""
    name_error = _regex_error(
        _QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"
    )
    parts = value.split("/")
    if len(parts) > 2:
        suffix = " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        return ["a qualified name " + name_error + suffix]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in _dns1123_subdomain_errors(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errors.append("name part " + _max_len_error(63))
    if re.fullmatch(_QUALIFIED_NAME_FMT, name, re.ASCII) is None:
        errors.append("name part " + name_error)
    return errors


def validate_dns_label(value: str, field: str) -> list[Cause]:
    """Names that must be RFC 1123 labels (namespaces, services), reported at `field`."""
    return [_invalid(field, value, msg) for msg in _dns1123_label_errors(value)]


def validate_metadata(
    meta: dict[str, Any],
    *,
    namespaced: bool,
    name_required: bool = True,
    name_is_label: bool = False,
) -> list[Cause]:
    """ObjectMeta validation shared by every kind, worded like apimachinery's.

    The namespace is checked only when present: the caller fills it in from the request path
    (and drops it for cluster-scoped kinds) as kube-apiserver does before validating.
    """
    return _meta_causes(
        meta,
        "metadata",
        namespaced=namespaced,
        name_required=name_required,
        name_is_label=name_is_label,
    )


def _meta_causes(
    meta: dict[str, Any],
    path: str,
    *,
    namespaced: bool,
    name_required: bool,
    name_is_label: bool = False,
) -> list[Cause]:
    out: list[Cause] = []
    _check_names(meta, path, out, name_required=name_required, name_is_label=name_is_label)
    namespace = meta.get("namespace")
    if namespaced and isinstance(namespace, str) and namespace:
        out.extend(validate_dns_label(namespace, _join(path, "namespace")))
    elif namespace is not None and not isinstance(namespace, str):
        out.append(_type_error(_join(path, "namespace"), namespace, "string"))
    generation = meta.get("generation")
    if _is_number(generation) and generation < 0:
        detail = "must be greater than or equal to 0"
        out.append(_invalid(_join(path, "generation"), generation, detail))
    _check_labels(meta.get("labels"), _join(path, "labels"), out)
    _check_annotations(meta.get("annotations"), _join(path, "annotations"), out)
    _check_owner_references(meta.get("ownerReferences"), _join(path, "ownerReferences"), out)
    _check_finalizers(meta.get("finalizers"), _join(path, "finalizers"), out)
    return out


def _check_names(
    meta: dict[str, Any], path: str, out: list[Cause], *, name_required: bool, name_is_label: bool
) -> None:
    name_errors = _dns1123_label_errors if name_is_label else _dns1123_subdomain_errors
    generate = meta.get("generateName")
    generate_path = _join(path, "generateName")
    if isinstance(generate, str) and generate:
        # A generated suffix follows the prefix, so a trailing '-' is fine.
        masked = generate[:-1] + "a" if len(generate) > 1 and generate.endswith("-") else generate
        out.extend(_invalid(generate_path, generate, msg) for msg in name_errors(masked))
    elif generate is not None and not isinstance(generate, str):
        out.append(_type_error(generate_path, generate, "string"))
    name = meta.get("name")
    name_path = _join(path, "name")
    if name is None or name == "":
        if name_required and not generate:
            message = "Required value: name or generateName is required"
            out.append(Cause(name_path, message, REQUIRED))
    elif not isinstance(name, str):
        out.append(_type_error(name_path, name, "string"))
    else:
        out.extend(_invalid(name_path, name, msg) for msg in name_errors(name))


def _string_map(value: Any, path: str, out: list[Cause]) -> dict[str, str]:
    """The string entries of a labels/annotations map; anything else is a type error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        out.append(_type_error(path, value, "object"))
        return {}
    strings: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            strings[key] = item
        else:
            out.append(_type_error(_join(path, key), item, "string"))
    return strings


def _check_labels(value: Any, path: str, out: list[Cause]) -> None:
    for key, item in _string_map(value, path, out).items():
        out.extend(_invalid(path, key, msg) for msg in _qualified_name_errors(key))
        out.extend(_invalid(path, item, msg) for msg in _label_value_errors(item))


def _check_annotations(value: Any, path: str, out: list[Cause]) -> None:
    annotations = _string_map(value, path, out)
    for key in annotations:
        # Annotation keys are qualified names in any case.
        out.extend(_invalid(path, key, msg) for msg in _qualified_name_errors(key.lower()))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > _ANNOTATIONS_LIMIT:
        message = f"Too long: must have at most {_ANNOTATIONS_LIMIT} bytes"
        out.append(Cause(path, message, TOO_LONG))


def _check_owner_references(value: Any, path: str, out: list[Cause]) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        out.append(_type_error(path, value, "array"))
        return
    controller = ""
    for i, ref in enumerate(value):
        ref_path = f"{path}[{i}]"
        if not isinstance(ref, dict):
            out.append(_type_error(ref_path, ref, "object"))
            continue
        _check_owner_reference(ref, ref_path, out)
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                detail = (
                    'Only one reference can have Controller set to true. Found "true" in '
                    f"references for {controller} and {current}"
                )
                rendered = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                out.append(Cause(path, f"Invalid value: {rendered}: {detail}", INVALID))
            else:
                controller = current


def _check_owner_reference(ref: dict[str, Any], path: str, out: list[Cause]) -> None:
    fields: dict[str, str] = {}
    for key in ("apiVersion", "kind", "name", "uid"):
        item = ref.get(key, "")
        if isinstance(item, str):
            fields[key] = item
        else:
            out.append(_type_error(_join(path, key), item, "string"))
    api_version = fields.get("apiVersion")
    if api_version is not None:
        slashes = api_version.count("/")
        version = api_version if slashes == 0 else api_version.split("/")[1] if slashes == 1 else ""
        if not version:
            out.append(
                _invalid(_join(path, "apiVersion"), api_version, "version must not be empty")
            )
    for key in ("kind", "name", "uid"):
        if fields.get(key) == "":
            out.append(_invalid(_join(path, key), "", f"{key} must not be empty"))


def _check_finalizers(value: Any, path: str, out: list[Cause]) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        out.append(_type_error(path, value, "array"))
        return
    for i, finalizer in enumerate(value):
        if not isinstance(finalizer, str):
            out.append(_type_error(f"{path}[{i}]", finalizer, "string"))
            continue
        out.extend(_invalid(path, finalizer, msg) for msg in _qualified_name_errors(finalizer))
    if "orphan" in value and "foregroundDeletion" in value:
        detail = "finalizer orphan and foregroundDeletion cannot be both set"
        rendered = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        out.append(Cause(path, f"Invalid value: {rendered}: {detail}", INVALID))
