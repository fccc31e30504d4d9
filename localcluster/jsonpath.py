"""The JSONPath dialect Kubernetes uses for printer columns and `kubectl wait --for=jsonpath`.

Only what those need: `$`/`{}` wrapping, `.field` and `['field']`, `[n]`, slices,
`[*]`/`.*`, `..` recursion, unions and `[?(@.x op literal)]` filters. Evaluation never
fails: a path that does not apply to the object simply matches nothing, as
`AllowMissingKeys(true)` does upstream.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

# A compiled step maps the current node set (and the document root, for `$` inside
# filters) to the next node set.
Step = Callable[[list[Any], Any], list[Any]]
Operand = Callable[[Any, Any], list[Any]]

_NAME_TERMINATORS = frozenset(" \t\r\n.[](){},$@=!<>'\"")
_INT_RE = re.compile(r"-?[0-9]+")
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_COMPARATORS = ("==", "!=", "<=", ">=", "<", ">")
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _is_list(node: Any) -> bool:
    return isinstance(node, list | tuple)


def _run(steps: list[Step], nodes: list[Any], root: Any) -> list[Any]:
    for step in steps:
        if not nodes:
            break
        nodes = step(nodes, root)
    return nodes


def _field(name: str) -> Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        return [n[name] for n in nodes if isinstance(n, Mapping) and name in n]

    return step


def _wildcard(nodes: list[Any], root: Any) -> list[Any]:
    out: list[Any] = []
    for n in nodes:
        if isinstance(n, Mapping):
            out.extend(n.values())
        elif _is_list(n):
            out.extend(n)
    return out


def _descendants(nodes: list[Any], root: Any) -> list[Any]:
    """Every container at or below each node, in document order (what `..` selects from)."""
    out: list[Any] = []
    stack = list(reversed(nodes))
    while stack:
        n = stack.pop()
        if isinstance(n, Mapping):
            out.append(n)
            stack.extend(reversed(list(n.values())))
        elif _is_list(n):
            out.append(n)
            stack.extend(reversed(n))
    return out


def _index(i: int) -> Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            if _is_list(n):
                j = i + len(n) if i < 0 else i
                if 0 <= j < len(n):
                    out.append(n[j])
        return out

    return step


def _slice(start: int | None, end: int | None, stride: int | None) -> Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            if _is_list(n):
                out.extend(n[start:end:stride])
        return out

    return step


def _union(parts: list[Step]) -> Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        out: list[Any] = []
        for part in parts:
            out.extend(part(nodes, root))
        return out

    return step


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "structured"


def _compare(op: str, left: Any, right: Any) -> bool:
    """Compare like RFC 9535: values of different types are unequal and unordered."""
    same = _kind(left) == _kind(right)
    if op == "==":
        return same and bool(left == right)
    if op == "!=":
        return not (same and left == right)
    if not same or _kind(left) not in ("number", "string"):
        return False
    if op == "<":
        return bool(left < right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    return bool(left >= right)


def _filter(left: Operand, op: str | None, right: Operand | None) -> Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            if not _is_list(n):
                continue
            for item in n:
                lefts = left(item, root)
                if op is None or right is None:
                    if lefts:
                        out.append(item)
                    continue
                rights = right(item, root)
                if len(lefts) == 1 and len(rights) == 1 and _compare(op, lefts[0], rights[0]):
                    out.append(item)
        return out

    return step


def _literal(value: Any) -> Operand:
    return lambda item, root: [value]


class _Parser:
    def __init__(self, original: str) -> None:
        self.original = original
        text = original.strip()
        if text.startswith("{"):
            if not text.endswith("}"):
                raise ValueError(f"invalid JSONPath {original!r}: unclosed '{{'")
            text = text[1:-1].strip()
        self.text = text
        self.pos = 0

    def error(self, message: str) -> ValueError:
        return ValueError(f"invalid JSONPath {self.original!r}: {message} at position {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_space()
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "end of path"
            raise self.error(f"expected {char!r}, found {found}")
        self.pos += 1

    def parse(self) -> list[Step]:
        if not self.text:
            raise ValueError(f"invalid JSONPath {self.original!r}: empty expression")
        steps: list[Step] = []
        if self.peek() == "$":
            self.pos += 1
        elif self.peek() not in (".", "["):
            # Relaxed form kubectl also accepts: `metadata.name` means `.metadata.name`.
            steps.extend(self.name_step())
        steps.extend(self.segments(in_filter=False))
        if self.pos != len(self.text):
            raise self.error(f"unexpected {self.peek()!r}")
        return steps

    def segments(self, in_filter: bool) -> list[Step]:
        steps: list[Step] = []
        while self.pos < len(self.text):
            char = self.peek()
            if self.text.startswith("..", self.pos):
                self.pos += 2
                steps.append(_descendants)
                if self.peek() == "[":
                    continue
                named = self.name_step()
                if not named:
                    raise self.error("expected a name, '*' or '[' after '..'")
                steps.extend(named)
            elif char == ".":
                self.pos += 1
                steps.extend(self.name_step())  # a bare `.` is the current node
            elif char == "[":
                steps.append(self.bracket())
            elif in_filter:
                break  # whitespace, an operator or `)` ends a filter operand
            else:
                raise self.error(f"unexpected {char!r}")
        return steps

    def name(self) -> str:
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char in _NAME_TERMINATORS:
                break
            chars.append(char)
            self.pos += 1
        return "".join(chars)

    def name_step(self) -> list[Step]:
        start = self.pos
        name = self.name()
        if self.pos == start:
            return []
        if name == "*" and self.text[start] != "\\":
            return [_wildcard]
        return [_field(name)]

    def quoted(self) -> str:
        quote = self.peek()
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return "".join(chars)
            chars.append(char)
        raise self.error("unterminated string")

    def optional_int(self) -> int | None:
        self.skip_space()
        match = _INT_RE.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return int(match.group())

    def bracket(self) -> Step:
        self.pos += 1  # `[`
        self.skip_space()
        if not self.peek():
            raise self.error("unterminated '['")
        if self.peek() == "?":
            return self.filter()
        if self.peek() == "*":
            self.pos += 1
            self.expect("]")
            return _wildcard
        parts: list[Step] = []
        while True:
            self.skip_space()
            if self.peek() in ("'", '"'):
                parts.append(_field(self.quoted()))
            else:
                parts.append(self.index_or_slice())
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
                continue
            if not self.peek():
                raise self.error("unterminated '['")
            self.expect("]")
            break
        return parts[0] if len(parts) == 1 else _union(parts)

    def index_or_slice(self) -> Step:
        bounds = [self.optional_int()]
        self.skip_space()
        while self.peek() == ":" and len(bounds) < 3:
            self.pos += 1
            bounds.append(self.optional_int())
            self.skip_space()
        if len(bounds) == 1:
            if bounds[0] is None:
                raise self.error("expected an index, a slice, a quoted name, '*' or a filter")
            return _index(bounds[0])
        stride = bounds[2] if len(bounds) == 3 else None
        if stride == 0:
            raise self.error("slice step cannot be zero")
        return _slice(bounds[0], bounds[1], stride)

    def filter(self) -> Step:
        self.pos += 1  # `?`
        self.expect("(")
        self.skip_space()
        left, left_is_path = self.operand()
        self.skip_space()
        op: str | None = None
        right: Operand | None = None
        if self.peek() != ")":
            op = next((c for c in _COMPARATORS if self.text.startswith(c, self.pos)), None)
            if op is None:
                raise self.error(f"expected a comparison operator or ')', found {self.peek()!r}")
            self.pos += len(op)
            self.skip_space()
            right, _ = self.operand()
        elif not left_is_path:
            raise self.error("an existence filter needs a path such as @.name")
        self.expect(")")
        self.expect("]")
        return _filter(left, op, right)

    def operand(self) -> tuple[Operand, bool]:
        char = self.peek()
        if char in ("@", "$"):
            self.pos += 1
            steps = self.segments(in_filter=True)
            if char == "@":
                return (lambda item, root: _run(steps, [item], root)), True
            return (lambda item, root: _run(steps, [root], root)), True
        if char in ("'", '"'):
            text = self.quoted()
            return _literal(text), False
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()
            literal = match.group()
            number: int | float = (
                int(literal)
                if match.group(1) is None and match.group(2) is None
                else float(literal)
            )
            return _literal(number), False
        for word, value in _WORDS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return _literal(value), False
        found = repr(char) if char else "end of path"
        raise self.error(f"expected @, $, a string or a number in filter, found {found}")


@functools.lru_cache(maxsize=1024)
def compile_path(path: str) -> Callable[[Any], list[Any]]:
    """Parse once (CRD columns are evaluated for every row); raises ValueError on bad syntax."""
    steps = _Parser(path).parse()

    def evaluate_compiled(obj: Any) -> list[Any]:
        return _run(steps, [obj], obj)

    return evaluate_compiled


def evaluate(path: str, obj: Any) -> list[Any]:
    """Every value `path` selects in `obj` (the values themselves, not copies)."""
    return compile_path(path)(obj)
