"""Label and field selectors, parsed and matched the way kube-apiserver does.

Clients rely on the exact grammar (`kubectl -l 'env in (a,b),!canary'`), so the label
parser follows upstream's lexer and error wording; field selectors are the simpler
`field=value` form whose supported fields depend on the kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from localcluster.errors import StatusError, bad_request

# ---- validation shared with label keys and values

_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(_NAME_FMT)
_LABEL_VALUE_RE = re.compile(f"({_NAME_FMT})?")
_DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)

_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_NAME_FMT}')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '({_NAME_FMT})?')"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{_DNS1123_SUBDOMAIN_FMT}')"
)


def qualified_name_errors(value: str) -> list[str]:
    """Why `value` is not a qualified name (label/annotation key); empty when it is."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {_NAME_MSG} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errors.append("prefix part must be no more than 253 characters")
            if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
                errors.append(f"prefix part {_DNS1123_SUBDOMAIN_MSG}")
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _NAME_RE.fullmatch(name):
        errors.append(f"name part {_NAME_MSG}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """Why `value` is not a valid label value; empty when it is."""
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_LABEL_VALUE_MSG)
    return errors


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _invalid(path: str, value: str, detail: str) -> str:
    """One upstream `field.Invalid` error rendered as text."""
    return f"{path}: Invalid value: {value}: {detail}"


def _go_strings(values: Iterable[str]) -> str:
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


# ---- label selectors


class Op(StrEnum):
    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term of a label selector."""

    key: str
    op: Op
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, op: Op, values: Iterable[str]) -> Requirement:
        """Validate like upstream `labels.NewRequirement`, raising 400 on the first problem."""
        vals = tuple(values)
        problems: list[str] = []
        if errs := qualified_name_errors(key):
            problems.append(_invalid("key", _go_quote(key), "; ".join(errs)))
        if op in (Op.IN, Op.NOT_IN) and not vals:
            problems.append(
                _invalid(
                    "values",
                    _go_strings(vals),
                    "for 'in', 'notin' operators, values set can't be empty",
                )
            )
        elif op in (Op.EQUALS, Op.DOUBLE_EQUALS, Op.NOT_EQUALS) and len(vals) != 1:
            problems.append(
                _invalid(
                    "values",
                    _go_strings(vals),
                    "exact-match compatible operators must have exactly one value",
                )
            )
        elif op in (Op.EXISTS, Op.DOES_NOT_EXIST) and vals:
            problems.append(
                _invalid(
                    "values",
                    _go_strings(vals),
                    "values set must be empty for exists and does not exist",
                )
            )
        elif op in (Op.GREATER_THAN, Op.LESS_THAN):
            if len(vals) != 1:
                problems.append(
                    _invalid(
                        "values",
                        _go_strings(vals),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    )
                )
            for i, v in enumerate(vals):
                if _parse_int64(v) is None:
                    problems.append(
                        _invalid(
                            f"values[{i}]",
                            _go_quote(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        )
                    )
        for i, v in enumerate(vals):
            if errs := label_value_errors(v):
                problems.append(_invalid(f"values[{i}][{key}]", _go_quote(v), "; ".join(errs)))
        if problems:
            message = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
            raise bad_request(message)
        return cls(key, op, vals)

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op is Op.EXISTS:
            return self.key in labels
        if op is Op.DOES_NOT_EXIST:
            return self.key not in labels
        if op in (Op.IN, Op.EQUALS, Op.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Op.NOT_IN, Op.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        # Gt/Lt: the label must exist and hold an integer.
        if self.key not in labels:
            return False
        have = _parse_int64(labels[self.key])
        want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
        if have is None or want is None:
            return False
        return have > want if op is Op.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.op
        if op is Op.EXISTS:
            return self.key
        if op is Op.DOES_NOT_EXIST:
            return f"!{self.key}"
        values = ",".join(sorted(self.values))
        if op in (Op.IN, Op.NOT_IN):
            return f"{self.key} {op.value} ({values})"
        symbol = {Op.GREATER_THAN: ">", Op.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{values}"


def _parse_int64(text: str) -> int | None:
    """Go's strconv.ParseInt(s, 10, 64): optional sign, ASCII digits, 64-bit range."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


class _Tok(Enum):
    IDENT = "identifier"
    IN = "in"
    NOT_IN = "notin"
    NOT = "!"
    NOT_EQUALS = "!="
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    GREATER = ">"
    LESS = "<"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    END = "end of string"


_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = {t.value: t for t in _Tok if t.value and all(c in _SPECIAL for c in t.value)}
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"


def _lex(text: str) -> list[tuple[_Tok, str]]:
    """Tokens as upstream's lexer sees them; `in`/`notin` stay keywords until parsed."""
    tokens: list[tuple[_Tok, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n or text[i] == "\0":
            tokens.append((_Tok.END, ""))
            return tokens
        if text[i] in _SPECIAL:
            # Longest special symbol that is a known token (`!=`, `==`, else one char).
            pair = text[i : i + 2]
            literal = pair if pair in _SYMBOLS else text[i]
            tokens.append((_SYMBOLS[literal], literal))
            i += len(literal)
            continue
        start = i
        while i < n and text[i] not in _SPECIAL and text[i] not in _WHITESPACE and text[i] != "\0":
            i += 1
        word = text[start:i]
        keyword = {"in": _Tok.IN, "notin": _Tok.NOT_IN}.get(word, _Tok.IDENT)
        tokens.append((keyword, word))


class _ParseError(Exception):
    pass


class _LabelParser:
    """Recursive-descent parser mirroring upstream's, so errors read the same."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _peek(self, values: bool) -> tuple[_Tok, str]:
        tok, lit = self.tokens[self.pos]
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            return _Tok.IDENT, lit
        return tok, lit

    def _next(self, values: bool) -> tuple[_Tok, str]:
        item = self._peek(values)
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self._peek(values=True)
            if tok is _Tok.END:
                return requirements
            if tok not in (_Tok.IDENT, _Tok.NOT):
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except _ParseError as e:
                raise _ParseError(f"unable to parse requirement: {e}") from None
            except StatusError as e:
                raise _ParseError(f"unable to parse requirement: {e.message}") from None
            tok, lit = self._next(values=True)
            if tok is _Tok.END:
                return requirements
            if tok is not _Tok.COMMA:
                raise _ParseError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self._peek(values=True)
            if tok not in (_Tok.IDENT, _Tok.NOT):
                raise _ParseError(f"found '{lit}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        tok, key = self._next(values=True)
        negated = tok is _Tok.NOT
        if negated:
            tok, key = self._next(values=True)
        if tok is not _Tok.IDENT:
            raise _ParseError(f"found '{key}', expected: identifier")
        if errs := qualified_name_errors(key):
            raise _ParseError(_invalid("<nil>", _go_quote(key), "; ".join(errs)))
        following, _ = self._peek(values=True)
        if negated:
            return Requirement.new(key, Op.DOES_NOT_EXIST, ())
        if following in (_Tok.END, _Tok.COMMA):
            return Requirement.new(key, Op.EXISTS, ())
        op = self._operator()
        values = self._value_set() if op in (Op.IN, Op.NOT_IN) else {self._exact_value()}
        return Requirement.new(key, op, sorted(values))

    def _operator(self) -> Op:
        tok, lit = self._next(values=False)
        ops = {
            _Tok.IN: Op.IN,
            _Tok.NOT_IN: Op.NOT_IN,
            _Tok.EQUALS: Op.EQUALS,
            _Tok.DOUBLE_EQUALS: Op.DOUBLE_EQUALS,
            _Tok.NOT_EQUALS: Op.NOT_EQUALS,
            _Tok.GREATER: Op.GREATER_THAN,
            _Tok.LESS: Op.LESS_THAN,
        }
        if tok not in ops:
            raise _ParseError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        return ops[tok]

    def _exact_value(self) -> str:
        tok, lit = self._peek(values=True)
        if tok in (_Tok.END, _Tok.COMMA):
            return ""
        tok, lit = self._next(values=True)
        if tok is _Tok.IDENT:
            return lit
        raise _ParseError(f"found '{lit}', expected: identifier")

    def _value_set(self) -> set[str]:
        tok, lit = self._next(values=True)
        if tok is not _Tok.OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self._peek(values=True)
        if tok is _Tok.CLOSE:  # `()` means the empty value
            self._next(values=True)
            return {""}
        if tok not in (_Tok.IDENT, _Tok.COMMA):
            raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._identifiers()
        tok, lit = self._next(values=True)
        if tok is not _Tok.CLOSE:
            raise _ParseError(f"found '{lit}', expected: ')'")
        return values

    def _identifiers(self) -> set[str]:
        """Comma-separated values up to `)`; empty slots (`a,,b`, `(,`) mean ""."""
        values: set[str] = set()
        while True:
            tok, lit = self._next(values=True)
            if tok is _Tok.IDENT:
                values.add(lit)
                following, following_lit = self._peek(values=True)
                if following is _Tok.COMMA:
                    continue
                if following is _Tok.CLOSE:
                    return values
                raise _ParseError(f"found '{following_lit}', expected: ',' or ')'")
            if tok is _Tok.COMMA:
                if not values:
                    values.add("")
                following, _ = self._peek(values=True)
                if following is _Tok.CLOSE:
                    values.add("")
                    return values
                if following is _Tok.COMMA:
                    self._next(values=True)
                    values.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")


class LabelSelector:
    """A parsed label selector: parse once per request, match against every object."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """The `labelSelector` query parameter; bad syntax is a 400 worded like upstream's."""
        try:
            return cls(_LabelParser(text).parse())
        except _ParseError as e:
            raise bad_request(str(e)) from None

    @classmethod
    def from_dict(cls, selector: Mapping[str, Any]) -> LabelSelector:
        """A `metav1.LabelSelector` object; an empty one matches everything.

        Callers decide what a missing (null) selector means: upstream treats it as
        matching nothing in some places and everything in others.
        """
        requirements: list[Requirement] = []
        for key, value in (selector.get("matchLabels") or {}).items():
            requirements.append(Requirement.new(str(key), Op.EQUALS, [str(value)]))
        operators = {
            "In": Op.IN,
            "NotIn": Op.NOT_IN,
            "Exists": Op.EXISTS,
            "DoesNotExist": Op.DOES_NOT_EXIST,
        }
        for expr in selector.get("matchExpressions") or ():
            operator = expr.get("operator")
            if operator not in operators:
                raise bad_request(
                    f"{_go_quote(str(operator))} is not a valid label selector operator"
                )
            values = [str(v) for v in expr.get("values") or ()]
            requirements.append(
                Requirement.new(str(expr.get("key", "")), operators[operator], values)
            )
        return cls(requirements)

    @property
    def empty(self) -> bool:
        """True when the selector matches every object."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def __str__(self) -> str:
        """Upstream's canonical form (sorted by key), as tables print selectors."""
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"LabelSelector({str(self)!r})"


# ---- field selectors


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negated: bool = False


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split on `separator` except where it follows a backslash escape."""
    parts: list[str] = []
    start, i = 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == separator:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape_field_value(value: str) -> str:
    if "\\" not in value and "=" not in value and "," not in value:
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise bad_request(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if escaped:
        raise bad_request("invalid field selector: unterminated escape sequence")
    return "".join(out)


def _text(value: Any) -> str:
    """How upstream's field sets spell a value: bools and numbers as Go prints them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return ""


def _path(obj: Mapping[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


# Fields whose value is computed rather than read at their own path, with the kind they
# belong to (objects without a `kind` are assumed to be of that kind).
_COMPUTED: dict[str, tuple[str, Callable[[Mapping[str, Any]], str]]] = {
    "spec.hostNetwork": ("Pod", lambda o: _text(_path(o, "spec.hostNetwork") or False)),
    "status.successful": ("Job", lambda o: _text(_path(o, "status.succeeded") or 0)),
    "source": (
        "Event",
        lambda o: _text(_path(o, "source.component") or _path(o, "reportingComponent")),
    ),
    "reportingComponent": ("Event", lambda o: _text(_path(o, "reportingComponent"))),
}


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string a field selector compares for `field` (missing fields read as "")."""
    computed = _COMPUTED.get(field)
    if computed is not None and obj.get("kind", computed[0]) == computed[0]:
        return computed[1](obj)
    return _text(_path(obj, field))


class FieldSelector:
    """A parsed `fieldSelector`: `field=value` terms ANDed together."""

    __slots__ = ("terms",)

    def __init__(self, terms: Iterable[FieldTerm] = ()) -> None:
        self.terms: tuple[FieldTerm, ...] = tuple(terms)

    @classmethod
    def parse(cls, text: str, supported: Collection[str]) -> FieldSelector:
        """Parse and check every field is selectable for this kind (400 otherwise)."""
        terms: list[FieldTerm] = []
        for part in sorted(_split_unescaped(text, ",")):
            if not part:
                continue
            split = _split_term(part)
            if split is None:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            field, op, raw = split
            terms.append(FieldTerm(field, _unescape_field_value(raw), negated=op == "!="))
        for term in terms:
            if term.field not in supported:
                raise bad_request(_unsupported_field(term.field, supported))
        return cls(terms)

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for term in self.terms:
            if (field_value(obj, term.field) == term.value) == term.negated:
                return False
        return True

    def exact_name(self) -> str | None:
        """The name an `metadata.name=X` term pins, so a list can skip scanning."""
        for term in self.terms:
            if term.field == "metadata.name" and not term.negated:
                return term.value
        return None

    def __repr__(self) -> str:
        inner = ",".join(f"{t.field}{'!=' if t.negated else '='}{t.value}" for t in self.terms)
        return f"FieldSelector({inner!r})"


def _unsupported_field(field: str, supported: Collection[str]) -> str:
    first = [f for f in ("metadata.name", "metadata.namespace") if f in supported]
    ordered = first + sorted(f for f in supported if f not in first)
    listed = ", ".join(_go_quote(f) for f in ordered)
    return f"{_go_quote(field)} is not a known field selector: only {listed}"


_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

_KIND_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "Pod"): frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    ("", "Event"): frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    ("", "Secret"): frozenset({"type"}),
    ("", "Namespace"): frozenset({"status.phase"}),
    ("batch", "Job"): frozenset({"status.successful"}),
}


def supported_field_selectors(kind: str, group: str) -> frozenset[str]:
    """Fields a kind can be selected by; custom resources may add their selectableFields."""
    return _META_FIELDS | _KIND_FIELDS.get((group, kind), frozenset())
