"""Compile a rule's condition into a durable-rules ruleset (pure: no engine import).

Each guard below answers a measured engine pitfall (engine-notes §4):
- P7: a field-vs-field comparison with the other field missing is true in the engine, so every
  `ref` comparison also requires both fields to exist.
- P10/P11: the engine has no per-record NOT, and `$neq` on a missing field is false. `not` is
  pushed down to the leaves (De Morgan) and each negated leaf is spelled out with `$nex`.
- P9/P14: constants are typed against the field (a text field never meets a number; dates become
  YYYYMMDD integers; text is never ordered with lt/gt, whose engine ordering is wrong).
- P12: `$or` fires once per true branch; the engine module collects matches into a set.
- P13: the engine's own regex (its dialect, and the hangs, crashes and wrong answers the
  differential tests found) is never used: `matches` and `in` lists longer than `MAX_OR_BRANCHES`
  (P16: wide `$or` hangs the engine) become flag columns computed with pandas (Python's `re`, once
  per distinct value) before the facts are encoded, and the engine tests the flag. Patterns are
  still held to the documented subset in `regex.py`.
- P6: every rule pattern is anchored on the discriminator `__k == "c"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from scrubber.fields import FieldType
from scrubber.model import All, Condition, Leaf, Not, Op

MAX_OR_BRANCHES = 50
FACT_KIND = "__k"  # discriminator key of every fact
PRIVATE_BASE = 0xE000  # text characters JSON would escape are mapped here (see encode_text)

_OPS = {Op.EQ: "$eq", Op.NE: "$neq", Op.LT: "$lt", Op.LE: "$lte", Op.GT: "$gt", Op.GE: "$gte"}
_NEGATED = {Op.EQ: Op.NE, Op.NE: Op.EQ, Op.LT: Op.GE, Op.LE: Op.GT, Op.GT: Op.LE, Op.GE: Op.LT}


def encode_text(value: str) -> str:
    """Map the characters JSON escapes (`"`, `\\`, controls) to private-use characters.

    The engine compares and matches the JSON text of a value (P13, P14), where `a"b` is four
    characters. Mapping each such character to one private-use character keeps lengths and
    regex semantics intact; constants and facts go through the same mapping, so equality holds.
    """
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return "".join(
        chr(PRIVATE_BASE + ord(c)) if (ord(c) < 32 or c in '"\\' or ord(c) == 127) else c
        for c in value
    )


def number_json(value: float) -> str:
    """A number as JSON text the engine parses: never exponent form (P1/P15: `1e-05` truncates)."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = np.format_float_positional(value, unique=True, trim="0")
    return text if "." in text else text + ".0"


@dataclass(frozen=True)
class EngineNumber:
    """A float constant, written into the ruleset JSON as `number_json` text (see ruleset_json)."""

    text: str


_NUMBER_TOKEN = "\x00number:"
_NUMBER_TOKEN_JSON = re.compile(r'"\\u0000number:([^"]*)"')


def encode_constant(value: Any, ftype: FieldType) -> Any:
    """Encode a rule constant exactly as the fact encoder encodes field values."""
    if ftype in (FieldType.TEXT, FieldType.LIST):
        return encode_text(str(value))
    if ftype is FieldType.DATE:
        d = value if isinstance(value, date) else date.fromisoformat(str(value))
        return d.year * 10000 + d.month * 100 + d.day
    if ftype is FieldType.BOOL:
        return bool(value)
    if isinstance(value, float):
        return EngineNumber(number_json(value))
    return value


@dataclass(frozen=True)
class FlagColumn:
    """A boolean column computed with pandas before encoding, tested by the engine.

    The flag is missing wherever its field is missing, so `{flag: False}` keeps the meaning
    "present and not in the list / not matching".
    """

    name: str
    field: str
    kind: str  # "in": value is one of `values`; "fullmatch": value fully matches `pattern`
    values: tuple[Any, ...] = ()
    pattern: str = ""


@dataclass(frozen=True)
class CompiledRule:
    """A rule as the engine runs it: its ruleset JSON and the columns its facts carry."""

    rule_id: str
    ruleset: dict[str, Any]
    fields: tuple[str, ...]  # input and derived fields the facts carry
    flags: tuple[FlagColumn, ...]
    # Fields the condition only tests for presence: facts carry `true` instead of the value, so
    # lines differing only in, say, their authorization number are one fact (engine-notes §7.3).
    presence_only: tuple[str, ...] = ()

    def ruleset_json(self) -> str:
        text = json.dumps(self.ruleset, ensure_ascii=False, sort_keys=True,
                          default=lambda n: _NUMBER_TOKEN + n.text)
        return _NUMBER_TOKEN_JSON.sub(r"\1", text)  # the token's quotes go: a bare number


class _Compiler:
    def __init__(self, field_types: Mapping[str, FieldType]):
        self.types = field_types
        self.flags: list[FlagColumn] = []
        self.value_fields: set[str] = set()  # fields whose values the engine compares
        self.presence_fields: set[str] = set()  # fields the engine only tests for presence

    # -- helpers ------------------------------------------------------------------------------
    def _flag(self, leaf: Leaf, kind: str, values: tuple[Any, ...] = (), pattern: str = "") -> str:
        self.presence_fields.add(leaf.field)  # the flag carries the answer; the field only its presence
        name = f"__x{len(self.flags)}"
        self.flags.append(FlagColumn(name, leaf.field, kind, values, pattern))
        return name

    def _const(self, leaf: Leaf, value: Any) -> Any:
        return encode_constant(value, self.types[leaf.field])

    @staticmethod
    def _ex(name: str) -> dict[str, Any]:
        return {"$ex": {name: 1}}

    @staticmethod
    def _nex(name: str) -> dict[str, Any]:
        return {"$nex": {name: 1}}

    @staticmethod
    def _or(parts: list[dict[str, Any]]) -> dict[str, Any]:
        return parts[0] if len(parts) == 1 else {"$or": parts}

    @staticmethod
    def _and(parts: list[dict[str, Any]]) -> dict[str, Any]:
        return parts[0] if len(parts) == 1 else {"$and": parts}

    # -- leaves -------------------------------------------------------------------------------
    def _compare(self, leaf: Leaf, op: Op) -> dict[str, Any]:
        if leaf.ref is not None:
            return self._and(
                [self._ex(leaf.field), self._ex(leaf.ref), {_OPS[op]: {leaf.field: {"$m": leaf.ref}}}]
            )
        value = self._const(leaf, leaf.value)
        # $neq on a missing field is already false in the engine, as our semantics require.
        return {leaf.field: value} if op is Op.EQ else {_OPS[op]: {leaf.field: value}}

    def _in(self, leaf: Leaf) -> dict[str, Any]:
        values = tuple(dict.fromkeys(leaf.value))
        if len(values) > MAX_OR_BRANCHES:
            return {self._flag(leaf, "in", values): True}
        return self._or([{leaf.field: self._const(leaf, v)} for v in values])

    def _not_in(self, leaf: Leaf) -> dict[str, Any]:
        values = tuple(dict.fromkeys(leaf.value))
        if len(values) > MAX_OR_BRANCHES:
            return {self._flag(leaf, "in", values): False}
        return self._and([{"$neq": {leaf.field: self._const(leaf, v)}} for v in values])

    def _has_any(self, leaf: Leaf) -> dict[str, Any]:
        items = [{"$i": self._const(leaf, v)} for v in dict.fromkeys(leaf.value)]
        return {"$iany": {leaf.field: self._or(items)}}

    def _has_none(self, leaf: Leaf) -> dict[str, Any]:
        # An empty list is encoded as an absent key ($iall on [] is false in the engine).
        items = [{"$neq": {"$i": self._const(leaf, v)}} for v in dict.fromkeys(leaf.value)]
        return self._or([self._nex(leaf.field), {"$iall": {leaf.field: self._and(items)}}])

    def leaf(self, leaf: Leaf, negate: bool) -> dict[str, Any]:
        op = leaf.op
        if op is Op.EXISTS or op is Op.MISSING:
            self.presence_fields.add(leaf.field)
        elif not self._flagged(leaf, negate):
            self.value_fields.update(leaf.fields())
        if op in _OPS:
            if not negate:
                return self._compare(leaf, op)
            missing = [self._nex(leaf.field)] + ([self._nex(leaf.ref)] if leaf.ref else [])
            return self._or([*missing, self._compare(leaf, _NEGATED[op])])
        if op is Op.EXISTS or op is Op.MISSING:
            present = (op is Op.EXISTS) != negate
            return self._ex(leaf.field) if present else self._nex(leaf.field)
        if op is Op.IN:
            return self._or([self._nex(leaf.field), self._not_in(leaf)]) if negate else self._in(leaf)
        if op is Op.NOT_IN:
            return self._or([self._nex(leaf.field), self._in(leaf)]) if negate else self._not_in(leaf)
        if op is Op.HAS_ANY:
            return self._has_none(leaf) if negate else self._has_any(leaf)
        if op is Op.HAS_NONE:
            return self._has_any(leaf) if negate else self._has_none(leaf)
        if op is Op.MATCHES:
            # Never the engine's own regex: it merges overlapping alternatives wrongly
            # ('a{3}.[^X]?|[^+]|..{3}.' rejects 'aaab'), its compiler never returns on 'x*(b?)*'
            # and aborts the process on '(1.+)?.[^0-c]*' (all found by tests/test_differential.py).
            # Python's re decides, once per distinct value; the engine tests the flag.
            flag = self._flag(leaf, "fullmatch", pattern=leaf.value)
            return self._or([self._nex(leaf.field), {flag: False}]) if negate else {flag: True}
        raise ValueError(f"unknown op {op}")

    @staticmethod
    def _flagged(leaf: Leaf, negate: bool) -> bool:
        """Whether the leaf compiles to a pandas-computed flag instead of a test on the value."""
        long_list = leaf.op in (Op.IN, Op.NOT_IN) and len(dict.fromkeys(leaf.value)) > MAX_OR_BRANCHES
        return long_list or leaf.op is Op.MATCHES

    def cond(self, cond: Condition, negate: bool = False) -> dict[str, Any]:
        if isinstance(cond, Leaf):
            return self.leaf(cond, negate)
        if isinstance(cond, Not):
            return self.cond(cond.child, not negate)
        parts = [self.cond(c, negate) for c in cond.children]
        conjunctive = isinstance(cond, All) != negate  # De Morgan
        return self._and(parts) if conjunctive else self._or(parts)


def compile_condition(
    rule_id: str, when: Condition, field_types: Mapping[str, FieldType], chunk_size: int
) -> CompiledRule:
    """Compile one rule's condition to its own ruleset: the rule, a sentinel and an end marker."""
    comp = _Compiler(field_types)
    body = comp.cond(when)
    ruleset = {
        "r": {"all": [{"m": {"$and": [{FACT_KIND: "c"}, body]}}], "cap": chunk_size},
        # Makes every fact "handled" so a batch never raises NotHandled; never fires itself.
        "__sentinel": {"all": [{"m": {FACT_KIND: "c"}}, {"z": {FACT_KIND: "__never__"}}]},
        # Fires for the fact appended to every batch: if it does not, the batch was truncated (P1).
        "__end": {"all": [{"m": {FACT_KIND: "end"}}]},
    }
    fields = comp.value_fields | comp.presence_fields
    return CompiledRule(rule_id, ruleset, tuple(sorted(fields)), tuple(comp.flags),
                        tuple(sorted(comp.presence_fields - comp.value_fields)))
