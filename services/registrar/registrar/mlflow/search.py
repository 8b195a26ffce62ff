"""MLflow's search grammar, as a pure module: a filter string parsed into
comparisons, each tested against an MLflow entity's JSON; `order_by` parsed
into sort keys; page tokens as offsets. No I/O: the routes fetch the rows and
ask this module which to answer, in which order, one page at a time.

The grammar is the one MLflow's search APIs accept: comparisons joined by AND
(case-insensitive), each `<key> <op> <value>`; keys are attributes (`name`,
`run_id`, ...) or tags (`tags.k`, `tag.k`, with the key in backticks or double
quotes when it holds dots or spaces); values are quoted strings, numbers, or
for IN a parenthesised list of strings. A filter that does not parse, or that
uses a key or operator the entity does not support, is an InvalidSearch, which
the routes answer as INVALID_PARAMETER_VALUE."""

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# MLflow's client appends this to every model search: prompts are models tagged
# so, and a model without the tag is not a prompt.
PROMPT_TAG = "mlflow.prompt.is_prompt"

TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<backticked>`[^`]*`)
    | (?P<op>!=|<>|>=|<=|=|<|>)
    | (?P<paren>[(),])
    | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
    | (?P<word>[A-Za-z_][\w.]*)
    | (?P<dot>\.)
    )""", re.VERBOSE)

STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")


class InvalidSearch(ValueError):
    """A filter, order_by or page token MLflow's search would refuse."""


@dataclass(frozen=True)
class Comparison:
    kind: str  # "attribute" or "tag"
    key: str
    op: str
    value: str | int | tuple[str, ...]


@dataclass(frozen=True)
class Entity:
    """What one kind of entity may be searched by: attribute -> allowed operators."""

    name: str
    attributes: Mapping[str, tuple[str, ...]]
    numeric: frozenset[str] = frozenset()


REGISTERED_MODELS = Entity("registered model", {"name": STRING_OPS})
MODEL_VERSIONS = Entity("model version", {
    "name": STRING_OPS + ("IN", "NOT IN"),
    "run_id": ("=", "!=", "IN", "NOT IN"),
    "source_path": STRING_OPS,
    "version_number": NUMBER_OPS + ("IN", "NOT IN"),
}, numeric=frozenset({"version_number"}))
# What a filter key means in an entity's MLflow JSON.
ATTRIBUTE_FIELD = {"name": "name", "run_id": "run_id", "source_path": "source", "version_number": "version"}


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise InvalidSearch(f"Invalid filter {text!r}: cannot read it from {text[position:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def _unquoted(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


class _Reader:
    def __init__(self, text: str):
        self.text, self.tokens, self.at = text, _tokens(text), 0

    def fail(self, why: str) -> InvalidSearch:
        return InvalidSearch(f"Invalid filter {self.text!r}: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.fail("it ends too early")
        self.at += 1
        return token

    def key(self) -> tuple[str, str]:
        kind, text = self.take()
        if kind == "backticked":
            return "attribute", text[1:-1]
        if kind != "word":
            raise self.fail(f"expected a key, found {text!r}")
        head, dot, rest = text.partition(".")
        if head.lower() in ("tag", "tags"):
            if not dot:  # tags.`key` or tags."key": the key is the next token
                if self.take()[0] != "dot":
                    raise self.fail(f"expected a tag key after {text!r}")
                rest = ""
            if not rest:
                quoted_kind, quoted = self.take()
                if quoted_kind not in ("backticked", "string"):
                    raise self.fail(f"expected a tag key, found {quoted!r}")
                rest = quoted[1:-1]
            return "tag", rest
        if dot:
            if head.lower() not in ("attribute", "attributes", "attr"):
                raise self.fail(f"invalid key {text!r}")
            return "attribute", rest
        return "attribute", text

    def op(self) -> str:
        kind, text = self.take()
        if kind == "op":
            return "!=" if text == "<>" else text
        word = text.upper() if kind == "word" else ""
        if word in ("LIKE", "ILIKE", "IN"):
            return word
        if word == "NOT" and (self.peek() or ("", ""))[1].upper() == "IN":
            self.take()
            return "NOT IN"
        raise self.fail(f"expected an operator, found {text!r}")

    def value(self, op: str) -> str | int | tuple[str, ...]:
        kind, text = self.take()
        if op in ("IN", "NOT IN"):
            if text != "(":
                raise self.fail(f"{op} takes a parenthesised list, found {text!r}")
            items: list[str] = []
            while True:
                item_kind, item = self.take()
                if item_kind == "string":
                    items.append(_unquoted(item))
                elif item_kind == "number":
                    items.append(item)
                else:
                    raise self.fail(f"expected a quoted value in the list, found {item!r}")
                separator = self.take()[1]
                if separator == ")":
                    return tuple(items)
                if separator != ",":
                    raise self.fail(f"expected ',' or ')', found {separator!r}")
        if kind == "string":
            return _unquoted(text)
        if kind == "number":
            return int(text) if text.lstrip("-").isdigit() else text
        raise self.fail(f"expected a quoted value, found {text!r}")


def parse_filter(text: str | None, entity: Entity) -> tuple[Comparison, ...]:
    """The comparisons of `text`, all of which a match satisfies; () for no filter."""
    if text is None or not text.strip():
        return ()
    reader, found = _Reader(text), []
    while True:
        kind, key = reader.key()
        op = reader.op()
        value = reader.value(op)
        found.append(_checked(Comparison(kind, key, op, value), entity, reader))
        following = reader.peek()
        if following is None:
            return tuple(found)
        reader.take()
        if following[1].upper() != "AND":
            raise reader.fail(f"expected AND, found {following[1]!r}")


def _checked(comparison: Comparison, entity: Entity, reader: _Reader) -> Comparison:
    kind, key, op, value = comparison.kind, comparison.key, comparison.op, comparison.value
    if kind == "tag":
        if op not in STRING_OPS:
            raise reader.fail(f"invalid comparator for a tag: {op}")
        if not isinstance(value, str):
            raise reader.fail(f"a tag is compared with a quoted string, not {value!r}")
        return comparison
    allowed = entity.attributes.get(key)
    if allowed is None:
        raise reader.fail(f"invalid attribute key {key!r} for a {entity.name}; valid keys: "
                          + ", ".join(sorted(entity.attributes)))
    if op not in allowed:
        raise reader.fail(f"invalid comparator {op!r} for {key!r}; valid: {', '.join(allowed)}")
    if key in entity.numeric:
        try:
            number = int(value) if not isinstance(value, tuple) else tuple(str(int(v)) for v in value)
        except ValueError:
            raise reader.fail(f"{key} is compared with a whole number, not {value!r}") from None
        return Comparison(kind, key, op, number)
    if isinstance(value, int) or (op not in ("IN", "NOT IN") and not isinstance(value, str)):
        raise reader.fail(f"{key} is compared with a quoted string, not {value!r}")
    return comparison


def like(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """SQL LIKE: % any run, _ one character, backslash escapes."""
    parts, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.fullmatch("".join(parts), text, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _compare(op: str, found: Any, wanted: Any) -> bool:
    match op:
        case "=":
            return bool(found == wanted)
        case "!=":
            return bool(found != wanted)
        case "LIKE":
            return like(wanted, found)
        case "ILIKE":
            return like(wanted, found, ignore_case=True)
        case "IN":
            return str(found) in wanted
        case "NOT IN":
            return str(found) not in wanted
        case "<":
            return bool(found < wanted)
        case "<=":
            return bool(found <= wanted)
        case ">":
            return bool(found > wanted)
        case ">=":
            return bool(found >= wanted)
    return False  # pragma: no cover - ops are checked when parsed


def tags_of(entity_json: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in entity_json.get("tags", [])}


def matches(entity_json: Mapping[str, Any], comparisons: Sequence[Comparison]) -> bool:
    """Does an MLflow entity's JSON satisfy every comparison? A tag comparison
    needs the tag to be there (as MLflow's stores join on it), except the
    prompt tag: a model without it is not a prompt."""
    tags = tags_of(entity_json)
    for c in comparisons:
        if c.kind == "tag":
            found = tags.get(c.key, "false" if c.key == PROMPT_TAG else None)
            if found is None or not _compare(c.op, found, c.value):
                return False
            continue
        field = ATTRIBUTE_FIELD[c.key]
        value = entity_json.get(field)
        if c.key == "version_number":
            value = int(value) if value is not None else None
        if value is None:
            value = ""
        if not _compare(c.op, value, c.value):
            return False
    return True


# order_by: what each key sorts on in the entity's JSON.
MODEL_ORDER = {"name": "name", "timestamp": "creation_timestamp", "creation_timestamp": "creation_timestamp",
               "last_updated_timestamp": "last_updated_timestamp"}
VERSION_ORDER = {"name": "name", "version_number": "version", "creation_timestamp": "creation_timestamp",
                 "timestamp": "creation_timestamp", "last_updated_timestamp": "last_updated_timestamp",
                 "run_id": "run_id", "source_path": "source"}
MODEL_DEFAULT_ORDER = (("name", True),)
VERSION_DEFAULT_ORDER = (("last_updated_timestamp", False), ("name", True), ("version", False))
ORDER_CLAUSE = re.compile(r"^\s*(?:attribute\.)?`?(\w+)`?\s*(?:\s(ASC|DESC))?\s*$", re.IGNORECASE)


def parse_order_by(clauses: Sequence[str], keys: Mapping[str, str],
                   default: tuple[tuple[str, bool], ...]) -> tuple[tuple[str, bool], ...]:
    """(field, ascending) pairs: the caller's, then the default's as tie-breakers."""
    order: list[tuple[str, bool]] = []
    for clause in clauses:
        found = ORDER_CLAUSE.fullmatch(clause)
        if found is None or found.group(1) not in keys:
            raise InvalidSearch(f"Invalid order_by clause {clause!r}; valid keys: {', '.join(sorted(keys))}"
                                " with ASC or DESC")
        field = keys[found.group(1)]
        if field not in (f for f, _ in order):
            order.append((field, (found.group(2) or "ASC").upper() == "ASC"))
    order += [(f, up) for f, up in default if f not in (o for o, _ in order)]
    return tuple(order)


def _sort_key(field: str) -> Callable[[Mapping[str, Any]], Any]:
    if field == "version":
        return lambda e: int(e.get("version") or 0)
    return lambda e: e.get(field) if e.get(field) is not None else ""


def ordered(entities: Sequence[Mapping[str, Any]], order: Sequence[tuple[str, bool]]) -> list:
    """Sorted by each key in turn: stable sorts from the last key to the first."""
    result = list(entities)
    for field, ascending in reversed(order):
        result.sort(key=_sort_key(field), reverse=not ascending)
    return result


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidSearch(f"Invalid page token {token!r}") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidSearch(f"Invalid page token {token!r}")
    return offset


def page(entities: Sequence, token: str | None, max_results: int) -> tuple[list, str | None]:
    """One page from `token` on, and the token of the next (None after the last)."""
    start = offset_of(token)
    chosen = list(entities[start:start + max_results])
    following = start + max_results
    return chosen, (page_token(following) if following < len(entities) else None)
