"""The only module that touches durable-rules: facts in, the lines each rule fires on out.

The C extension `durable_rules_engine` is driven directly (engine-notes §7.1): no `Host`, whose
timer threads race with batch calls and lose matches (P4). Each rule has its own ruleset,
created once per process. A rule sees only the fields it reads, so lines that agree on those
fields are one fact: the engine evaluates each distinct projection once and the result is
broadcast back to the lines (§3, "per-rule-group dedup"). Facts are JSON text built here:
missing values are omitted keys (P10), numbers never use exponent form (P1/P15), text goes
through `compile.encode_text` (P13/P14), ids are chunk-local (P2), and every batch ends with a
marker fact whose rule must fire, or the batch was silently truncated (P1).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import durable_rules_engine as dre
import numpy as np
import pandas as pd

from scrubber import regex
from scrubber.compile import FACT_KIND, CompiledRule, FlagColumn, encode_text, number_json
from scrubber.distinct import distinct_rows
from scrubber.errors import EngineError
from scrubber.fields import FieldType

CHUNK_SIZE = 1000  # facts per assert_facts call; ids 0..CHUNK_SIZE stay clear of FNV collisions (P2)
_ID = re.compile(r'"id": (\d+)')
_END_PREFIX = '{"__end"'
_MISSING = -1

# Ruleset handles are process-global in the C engine (P20): never shared across a fork, never
# deleted (delete_ruleset leaks, P17). Keyed by the ruleset text, so identical rules share one.
_handles: dict[tuple[int, str], int] = {}


def _handle(compiled: CompiledRule) -> int:
    text = compiled.ruleset_json()
    key = (os.getpid(), text)
    if key not in _handles:
        try:
            _handles[key] = dre.create_ruleset(f"r{len(_handles)}", text)
        except Exception as exc:  # the engine raises its own bare error type
            raise EngineError(f"rule {compiled.rule_id} cannot be loaded by the engine: {exc}") from None
    return _handles[key]


def check_ruleset(compiled: CompiledRule) -> str | None:
    """Trial-load a compiled rule; return the engine's complaint, if any (used by `rules check`)."""
    try:
        _handle(compiled)
    except EngineError as exc:
        return str(exc)
    return None


def _value_json(value: Any, ftype: FieldType) -> str:
    """The JSON text of one non-missing value, as the engine must see it."""
    if ftype is FieldType.TEXT:
        return json.dumps(encode_text(str(value)), ensure_ascii=False)
    if ftype is FieldType.LIST:
        items = [encode_text(v) for v in str(value).split(";") if v]
        return json.dumps(items, ensure_ascii=False)
    if ftype is FieldType.BOOL:
        return "true" if bool(value) else "false"
    if ftype is FieldType.DATE:
        ts = pd.Timestamp(value)
        return str(ts.year * 10000 + ts.month * 100 + ts.day)
    if ftype is FieldType.INT:
        return str(int(value))
    return number_json(float(value))


class FactFrame:
    """A frame's columns factorized once and encoded once per distinct value, shared by rules."""

    def __init__(self, frame: pd.DataFrame, field_types: Mapping[str, FieldType]):
        self.frame = frame
        self.types = field_types
        self._columns: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._factorized: dict[str, tuple[np.ndarray, Any]] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def factorized(self, name: str) -> tuple[np.ndarray, Any]:
        """The column's factorize codes (-1 = missing) and distinct values, computed once (messages
        read them too)."""
        if name not in self._factorized:
            codes, uniques = pd.factorize(self.frame[name], use_na_sentinel=True)
            self._factorized[name] = (codes.astype(np.int64), uniques)
        return self._factorized[name]

    def column(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Factorize codes (-1 = missing) and the `"name": value` JSON fragment of each code."""
        if name not in self._columns:
            ftype = self.types[name]
            codes, uniques = self.factorized(name)
            if ftype is FieldType.LIST:  # ";;" holds no item: missing (its code is never used)
                empty = np.array([str(v).strip(";") == "" for v in uniques] + [False], dtype=bool)
                codes = np.where(empty[codes], _MISSING, codes)
            key = json.dumps(name)
            fragments = [f"{key}: {_value_json(v, ftype)}" for v in uniques]
            self._columns[name] = (codes, fragments)
        return self._columns[name]

    def codes(self, name: str) -> np.ndarray:
        """Factorize codes, -1 where the field is missing as `column` sees it, without encoding values."""
        if self.types[name] is FieldType.LIST:  # ";;" holds no item: missing (see column)
            return self.column(name)[0]
        return self.factorized(name)[0]

    def presence(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Codes 0 where the field has a value, -1 where it is missing; the fact says `true`."""
        codes = self.codes(name)
        return np.where(codes < 0, _MISSING, 0), [f"{json.dumps(name)}: true"]

    def flag(self, spec: FlagColumn) -> tuple[np.ndarray, list[str]]:
        """A flag column (see compile.FlagColumn): codes 0 = false, 1 = true, -1 = field missing."""
        codes = self.codes(spec.field)
        # Each distinct value tested once, then broadcast by the factorize codes.
        value_codes, uniques = self.factorized(spec.field)
        if spec.kind == "in":
            ftype = self.types[spec.field]
            wanted = set(spec.values) if ftype is not FieldType.DATE else {pd.Timestamp(v) for v in spec.values}
            matched = pd.Series(uniques).isin(wanted).to_numpy(dtype=bool, na_value=False)
        else:
            pattern = re.compile(spec.pattern, regex.python_flags())
            matched = np.array([bool(pattern.fullmatch(str(v))) for v in uniques], dtype=bool)
        hit = np.append(matched, False)[value_codes]  # code -1 (missing) -> the trailing False
        flag_codes = np.where(codes < 0, _MISSING, hit.astype(np.int64))
        key = json.dumps(spec.name)
        return flag_codes, [f"{key}: false", f"{key}: true"]


def evaluate(compiled: CompiledRule, facts: FactFrame) -> np.ndarray:
    """Return a boolean mask: the lines of `facts` on which the rule fires."""
    n = len(facts)
    if n == 0:
        return np.zeros(0, dtype=bool)
    columns = [facts.presence(f) if f in compiled.presence_only else facts.column(f) for f in compiled.fields]
    columns += [facts.flag(s) for s in compiled.flags]
    group_of_line, representatives = distinct_rows([(codes, len(frags)) for codes, frags in columns])
    fired_groups = np.zeros(len(representatives), dtype=bool)
    handle = _handle(compiled)
    for start in range(0, len(representatives), CHUNK_SIZE):
        reps = representatives[start : start + CHUNK_SIZE]
        texts = []
        for local_id, row in enumerate(reps):
            parts = [frags[codes[row]] for codes, frags in columns if codes[row] >= 0]
            parts.append(f'"{FACT_KIND}": "c"')
            parts.append(f'"id": {local_id}')
            texts.append("{" + ", ".join(parts) + "}")
        for local_id in _run_chunk(handle, texts, compiled.rule_id):
            fired_groups[start + local_id] = True
    return fired_groups[group_of_line]


def _run_chunk(handle: int, texts: list[str], rule_id: str) -> set[int]:
    """Assert one chunk of facts, drain the actions, retract; return the ids the rule fired on."""
    end_id = len(texts)
    payload = "[" + ", ".join([*texts, f'{{"{FACT_KIND}": "end", "id": {end_id}}}']) + "]"
    retract = "[" + ", ".join(f'{{"id": {i}}}' for i in range(end_id + 1)) + "]"
    fired: set[int] = set()
    ended = False
    try:
        code, state = dre.assert_facts(handle, payload)
        if code != 0:
            raise EngineError(f"rule {rule_id}: the engine returned code {code} for a batch")
        result = dre.start_action_for_state(handle, state)
        messages = result[1] if result else None
        while messages:
            if messages.startswith(_END_PREFIX):
                ended = True
            else:
                fired.update(int(i) for i in _ID.findall(messages))
            messages = dre.complete_and_start_action(handle, state)
    except EngineError:
        raise
    except Exception as exc:  # the engine's own error type carries only a code
        raise EngineError(f"rule {rule_id}: the engine failed on a batch: {exc}") from None
    finally:
        dre.retract_facts(handle, retract)
    if not ended:
        raise EngineError(f"rule {rule_id}: the engine stopped before the end of a batch")
    return fired
