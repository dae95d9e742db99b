"""What a rule is, apart from how it is evaluated (that is `compile.py` and `engine.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    EXISTS = "exists"
    MISSING = "missing"
    MATCHES = "matches"
    HAS_ANY = "has_any"  # list fields: at least one item is in the values
    HAS_NONE = "has_none"  # list fields: no item is in the values (true for an empty list)


COMPARISONS = (Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE)
ORDERINGS = (Op.LT, Op.LE, Op.GT, Op.GE)
VALUE_LISTS = (Op.IN, Op.NOT_IN, Op.HAS_ANY, Op.HAS_NONE)
PRESENCE = (Op.EXISTS, Op.MISSING)


@dataclass(frozen=True)
class Where:
    """A position in a YAML file, for error messages."""

    path: str
    line: int
    col: int


@dataclass(frozen=True)
class Leaf:
    """One predicate over a field: against constant value(s), or against another field (`ref`).

    Semantics (the engine and the test reference evaluator agree on these):
    - a comparison, `in`, `not_in` or `matches` on a missing value is false; `not` makes it true;
    - a comparison with `ref` is false when either field is missing;
    - list fields are never missing, only empty: `has_none` is true and `has_any` false on [].
    """

    field: str
    op: Op
    value: Any = None  # scalar for comparisons, tuple for value lists, str pattern for matches
    ref: str | None = None
    where: Where | None = None

    def fields(self) -> set[str]:
        return {self.field} | ({self.ref} if self.ref else set())


@dataclass(frozen=True)
class All:
    children: tuple[Condition, ...]

    def fields(self) -> set[str]:
        return set().union(*(c.fields() for c in self.children))


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Condition, ...]

    def fields(self) -> set[str]:
        return set().union(*(c.fields() for c in self.children))


@dataclass(frozen=True)
class Not:
    child: Condition

    def fields(self) -> set[str]:
        return self.child.fields()


Condition = Leaf | All | AnyOf | Not


@dataclass(frozen=True)
class Example:
    """A claim line (or a batch of lines) on which a rule must fire or must pass.

    Lines are merged over the baseline clean line (`rules/baseline_line.yaml`). For a batch,
    `fires_on` lists the positions (0-based) of the lines the rule must fire on; the rule must
    pass on every other line of the batch.
    """

    title: str
    expect: str  # "fires" or "passes"
    lines: tuple[dict[str, Any], ...]
    fires_on: tuple[int, ...]
    message: str | None = None
    todo: bool = False  # a known gap: expected to fail; fails the run once it starts passing
    where: Where | None = None
    severity: str | None = None  # the severity expected on every line the rule fires on
    mue_table: tuple[tuple[str, int, int], ...] = ()  # (cpt, MUE, MAI) rows in force for this example only


@dataclass(frozen=True)
class Source:
    title: str
    url: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    cause: str
    severity: str
    carc: str
    group_code: str
    summary: str
    when: Condition
    message: str
    fix: str
    sources: tuple[Source, ...]
    examples: tuple[Example, ...]
    path: str
    rarc: str | None = None
    status: str = "stable"
    rationale: str = ""
    unverified: tuple[str, ...] = ()
    severity_by_payer_type: dict[str, str] = field(default_factory=dict)
    effective_from: date | None = None
    effective_to: date | None = None
    content_hash: str = ""

    @property
    def denial_code(self) -> str:
        """The expected denial as a payer writes it: group code and CARC, e.g. `CO-16`."""
        return f"{self.group_code}-{self.carc}"

    def fields(self) -> set[str]:
        return self.when.fields()


_OP_WORDS = {
    Op.EQ: "is", Op.NE: "is not", Op.LT: "is less than", Op.LE: "is at most", Op.GT: "is more than",
    Op.GE: "is at least", Op.IN: "is one of", Op.NOT_IN: "is none of", Op.HAS_ANY: "includes any of",
    Op.HAS_NONE: "includes none of", Op.MATCHES: "matches the pattern",
}


def describe(cond: Condition, indent: str = "") -> str:
    """The condition in plain words, one clause per line (for `scrubber rules explain`)."""
    if isinstance(cond, Leaf):
        if cond.op is Op.EXISTS:
            return f"{indent}{cond.field} is present"
        if cond.op is Op.MISSING:
            return f"{indent}{cond.field} is missing"
        if cond.ref is not None:
            return f"{indent}{cond.field} {_OP_WORDS[cond.op]} {cond.ref}"
        value = cond.value
        if isinstance(value, tuple):
            shown = ", ".join(str(v) for v in value[:12]) + (f", ... ({len(value)} codes)" if len(value) > 12 else "")
            return f"{indent}{cond.field} {_OP_WORDS[cond.op]} [{shown}]"
        return f"{indent}{cond.field} {_OP_WORDS[cond.op]} {value!r}"
    if isinstance(cond, Not):
        return f"{indent}NOT:\n{describe(cond.child, indent + '  ')}"
    word = "ALL of:" if isinstance(cond, All) else "ANY of:"
    return f"{indent}{word}\n" + "\n".join(describe(c, indent + "  ") for c in cond.children)
