"""A plain-Python reference evaluator for rule conditions (tests only).

It answers "does this condition hold on this line?" with the semantics documented on
`scrubber.model.Leaf`, written as directly as possible and sharing no code with the engine
path (`scrubber.compile`, `scrubber.engine`): no De Morgan push-down, no flag columns, no
encoding. The differential test compares the two on generated conditions and lines.

A line is a dict of field -> typed Python value, or None for a missing value:
- text: str; int: int; number: float; date: datetime.date; bool: bool;
- list: a tuple of item strings (an absent or empty list is `()`; lists are never missing).
`line_values` turns a row of a typed pandas frame (as `claims.type_columns` and the derived
fields make it) into such a dict.

Semantics:
- a comparison (eq, ne, lt, le, gt, ge), `in`, `not_in` or `matches` on a missing value is false;
- a comparison with `ref` is false when either field is missing;
- `not` flips its child, whatever the child is (so `not (x eq 1)` holds on a missing x);
- `exists` / `missing` test for a value; a list "exists" when it has at least one item;
- `has_any`: at least one item is one of the values (false on an empty list);
  `has_none`: no item is one of the values (true on an empty list);
- number fields hold float64 values, and a whole-number constant for one is read as a float64;
- `matches` is `re.fullmatch(pattern, value, regex.python_flags())` (re.ASCII | re.DOTALL).
"""

from __future__ import annotations

import datetime as dt
import numbers
import operator
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from scrubber.fields import FieldType
from scrubber.model import All, AnyOf, Condition, Leaf, Not, Op
from scrubber.regex import python_flags

_COMPARE = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


@lru_cache(maxsize=4096)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text, python_flags())


def _like(value: Any, constant: Any) -> Any:
    """A constant for a number field is a float64, like the field's values (`2**53 + 1` is `2**53`)."""
    if isinstance(value, float) and isinstance(constant, int) and not isinstance(constant, bool):
        return float(constant)
    return constant


def _present(value: Any) -> bool:
    if isinstance(value, tuple):
        return len(value) > 0
    return value is not None


def holds(cond: Condition, line: Mapping[str, Any]) -> bool:
    """Whether `cond` holds on `line` (field -> typed value or None, lists as tuples)."""
    if isinstance(cond, All):
        return all(holds(c, line) for c in cond.children)
    if isinstance(cond, AnyOf):
        return any(holds(c, line) for c in cond.children)
    if isinstance(cond, Not):
        return not holds(cond.child, line)
    if isinstance(cond, Leaf):
        return _leaf(cond, line)
    raise TypeError(f"not a condition: {cond!r}")


def _leaf(leaf: Leaf, line: Mapping[str, Any]) -> bool:
    value = line.get(leaf.field)
    op = leaf.op
    if op is Op.EXISTS:
        return _present(value)
    if op is Op.MISSING:
        return not _present(value)
    if op is Op.HAS_ANY or op is Op.HAS_NONE:
        items = value or ()
        hit = any(item in leaf.value for item in items)
        return hit if op is Op.HAS_ANY else not hit
    if value is None:
        return False
    if leaf.ref is not None:
        other = line.get(leaf.ref)
        if other is None:
            return False
        return _COMPARE[op](value, other)
    if op in _COMPARE:
        return _COMPARE[op](value, _like(value, leaf.value))
    if op is Op.IN:
        return value in [_like(value, v) for v in leaf.value]
    if op is Op.NOT_IN:
        return value not in [_like(value, v) for v in leaf.value]
    if op is Op.MATCHES:
        return _pattern(leaf.value).fullmatch(value) is not None
    raise ValueError(f"unknown op {op}")


# -- typed frame rows -> reference lines ------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating | np.datetime64):
        return bool(pd.isna(value))
    return False


def typed_value(value: Any, ftype: FieldType) -> Any:
    """One cell of a typed frame as the reference sees it."""
    if ftype is FieldType.LIST:
        if _is_missing(value):
            return ()
        return tuple(item for item in str(value).split(";") if item)
    if _is_missing(value):
        return None
    if ftype is FieldType.TEXT:
        assert isinstance(value, str), f"text field holds {value!r}"
        return str(value)
    if ftype is FieldType.INT:
        assert not isinstance(value, bool | np.bool_), f"int field holds {value!r}"
        if isinstance(value, numbers.Integral):
            return int(value)
        number = float(value)
        assert number.is_integer(), f"int field holds {value!r}"
        return int(number)
    if ftype is FieldType.NUMBER:
        assert not isinstance(value, bool | np.bool_), f"number field holds {value!r}"
        return float(value)
    if ftype is FieldType.BOOL:
        assert isinstance(value, bool | np.bool_), f"bool field holds {value!r}"
        return bool(value)
    if ftype is FieldType.DATE:
        if isinstance(value, dt.datetime):  # pd.Timestamp is a datetime
            return value.date()
        if isinstance(value, dt.date):
            return value
        return pd.Timestamp(value).date()
    raise ValueError(f"unknown field type {ftype}")


def line_values(row: Mapping[str, Any], types: Mapping[str, FieldType]) -> dict[str, Any]:
    """A typed frame row (column -> cell) as a reference line, for the fields in `types`."""
    return {name: typed_value(row.get(name), ftype) for name, ftype in types.items()}
