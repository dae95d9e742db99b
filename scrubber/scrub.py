"""Scrub a batch: derived fields, then every rule through the engine, then findings."""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from scrubber import engine
from scrubber.claims import DAMAGED_ROW, DIAGNOSIS_FIELDS, ClaimBatch
from scrubber.compile import CompiledRule, compile_condition
from scrubber.derive import ICD_PATTERN, DeriveContext, derive, export_columns_behind
from scrubber.distinct import distinct_rows
from scrubber.fields import INPUT_PROBLEM_CAUSE, FieldType
from scrubber.loader import RulePack, field_types
from scrubber.model import All, Leaf, Op, Rule
from scrubber.processes import fork_pool
from scrubber.progress import stage

PARALLEL_MIN_LINES = 20_000
UNREADABLE_COLUMNS = "unreadable_columns"  # the reader's list of a line's unreadable columns (claims.type_columns)
FINDING_COLUMNS = ["row", "claim_id", "line_no", "rule_id", "cause", "severity", "carc", "message", "fix"]


def rule_condition(rule: Rule) -> Any:
    """The rule's condition, with its effective dates as conditions on service_date."""
    dated = []
    if rule.effective_from:
        dated.append(Leaf("service_date", Op.GE, rule.effective_from))
    if rule.effective_to:
        dated.append(Leaf("service_date", Op.LE, rule.effective_to))
    return All((*dated, rule.when)) if dated else rule.when


def columns_judged(rule: Rule) -> frozenset[str]:
    """The export columns behind the fields the rule's condition reads, itself or through a derived
    field. A line where one of them cannot be read is not judged by the rule: the value is
    INPUT_UNREADABLE_VALUE's finding, never taken as empty ("referring_npi is empty", two lines
    with line_no `1a` as one line key). Input-problem rules judge every line."""
    if rule.cause == INPUT_PROBLEM_CAUSE:
        return frozenset()
    return frozenset().union(*(export_columns_behind(f) for f in rule.when.fields()))


def compiled_rule(pack: RulePack, rule: Rule) -> CompiledRule:
    if rule.id not in pack.compiled:
        pack.compiled[rule.id] = compile_condition(rule.id, rule_condition(rule), field_types(), engine.CHUNK_SIZE)
    return pack.compiled[rule.id]


def template_fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def fields_used(pack: RulePack) -> set[str]:
    """Every field the rules test or show in a message or fix."""
    used: set[str] = set()
    for rule in pack.rules:
        used |= rule.fields() | template_fields(rule.message) | template_fields(rule.fix)
    return used


# How a missing value reads in a message: "none" where the field names a code that does not exist.
_NO_EDUCATION_CODE = "none (98960-98962 cover 1 to 8 patients)"
_MISSING_TEXT = {"edu_code_for_group_size": _NO_EDUCATION_CODE, "edu_code_for_session_count": _NO_EDUCATION_CODE,
                 "group_size": "empty"}  # "but group_size is empty", not "(group_size empty)"


def _is_list(name: str) -> bool:
    """List fields are never missing, only empty (model.Leaf): an empty one reads "none"."""
    return field_types().get(name) is FieldType.LIST


def _display(value: Any, name: str) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        if name in _MISSING_TEXT:
            return _MISSING_TEXT[name]
        return "none" if _is_list(name) else f"({name} empty)"  # "(cpt empty) billed with no diagnosis"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}" if name == "charge" else f"{value:g}"
    text = str(value)
    if name in DIAGNOSIS_FIELDS or _is_list(name):
        items = text.split(";")
        if name in DIAGNOSIS_FIELDS:  # shown the way billers write them: E11.9 (malformed codes as read)
            items = [c[:3] + "." + c[3:] if len(c) > 3 and ICD_PATTERN.fullmatch(c) else c for c in items]
        return ", ".join(items)
    return text


class DisplayValues:
    """The shard's columns as message templates read them: factorize codes (-1 = missing), shared
    with the engine's facts, and the distinct values as plain objects."""

    def __init__(self, facts: engine.FactFrame):
        self.facts = facts
        self._columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._columns:
            codes, uniques = self.facts.factorized(name)
            self._columns[name] = (codes, np.asarray(uniques, dtype=object))
        return self._columns[name]


def render(template: str, values: DisplayValues, rows: np.ndarray) -> np.ndarray:
    """Fill a message or fix template for the given rows, once per distinct set of values."""
    names = sorted(template_fields(template))
    if not names:
        return np.full(len(rows), template, dtype=object)
    columns = [values.column(n) for n in names]
    group_of_row, first = distinct_rows([(codes[rows], len(uniques)) for codes, uniques in columns])
    texts = []
    for row in rows[first]:
        shown = {}
        for name, (codes, uniques) in zip(names, columns, strict=True):
            code = codes[row]
            shown[name] = _display(None if code < 0 else uniques[code], name)
        texts.append(template.format_map(shown))
    return np.array(texts, dtype=object)[group_of_row]


def _severities(rule: Rule, payer_type: np.ndarray, payer_id: np.ndarray, rows: np.ndarray, pack: RulePack) -> np.ndarray:
    """The rule's severity on each row: rule default < by payer type < payer profile."""
    severity = np.full(len(rows), rule.severity, dtype=object)
    ptype = payer_type[rows]
    for name, value in rule.severity_by_payer_type.items():
        severity[ptype == name] = value
    pid = payer_id[rows]
    for payer, profile in pack.reference.payers.items():
        override = (profile.get("rule_severity") or {}).get(rule.id)
        if override:
            severity[pid == payer] = override
    return severity


@dataclass
class ScrubResult:
    findings: pd.DataFrame  # one row per finding, FINDING_COLUMNS, sorted by row and rule id


@dataclass
class _Shard:
    """The lines one process scrubs: derived fields, engine facts and what findings show."""

    pack: RulePack
    display: DisplayValues
    facts: engine.FactFrame
    claim: np.ndarray
    line_no: np.ndarray
    payer_type: np.ndarray
    payer_id: np.ndarray
    damaged: np.ndarray  # bool per line
    unreadable: tuple[np.ndarray, list[frozenset[str]]]  # each line's code (-1: none) of its set of unreadable columns

    def unreadable_in(self, columns: frozenset[str]) -> np.ndarray:
        """Whether each line has an unreadable value in one of `columns` (judged once per distinct set)."""
        codes, sets = self.unreadable
        return np.array([bool(s & columns) for s in sets] + [False], dtype=bool)[codes]


@dataclass
class _Fired:
    """One rule's findings in a shard: the shard rows it fired on and what each finding says."""

    rule: Rule
    rows: np.ndarray
    severity: np.ndarray
    message: np.ndarray
    fix: np.ndarray


def _fired(rule: Rule, shard: _Shard) -> _Fired | None:
    """One rule through the engine, then its findings with rendered messages. A damaged row
    (claims.DAMAGED_ROW) has no values to judge: only its damage, an input problem, is reported."""
    mask = engine.evaluate(compiled_rule(shard.pack, rule), shard.facts)
    if rule.cause != INPUT_PROBLEM_CAUSE:
        mask &= ~shard.damaged & ~shard.unreadable_in(columns_judged(rule))
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return None
    return _Fired(rule, rows, _severities(rule, shard.payer_type, shard.payer_id, rows, shard.pack),
                  render(rule.message, shard.display, rows), render(rule.fix, shard.display, rows))


def _unreadable_sets(facts: engine.FactFrame) -> tuple[np.ndarray, list[frozenset[str]]]:
    codes, uniques = facts.factorized(UNREADABLE_COLUMNS)
    return codes, [frozenset(str(names).split(";")) for names in uniques]


def scrub_lines(base: pd.DataFrame, rows: np.ndarray, pack: RulePack, run_date: date) -> list[pd.DataFrame]:
    """Derive the line and patient facts of `rows` (whole patients), run every rule, return findings
    (one frame, or none) numbered by their row in the batch."""
    frame = base.iloc[rows]
    frame = derive(frame, DeriveContext(pack.reference, run_date), fields_used(pack), scopes=("line", "patient"))
    facts = engine.FactFrame(frame, field_types())
    shard = _Shard(pack, DisplayValues(facts), facts,
                   frame["claim_id"].to_numpy(dtype=object), frame["line_no"].to_numpy(dtype=object),
                   frame["payer_type"].fillna("").to_numpy(dtype=object), frame["payer_id"].fillna("").to_numpy(dtype=object),
                   frame[DAMAGED_ROW].to_numpy(dtype=bool), _unreadable_sets(facts))
    fired = [f for f in (_fired(rule, shard) for rule in pack.rules) if f is not None]
    if not fired:
        return []
    local = np.concatenate([f.rows for f in fired])
    counts = [len(f.rows) for f in fired]

    def per_rule(attribute: str) -> np.ndarray:
        return np.repeat(np.array([getattr(f.rule, attribute) for f in fired], dtype=object), counts)

    # One frame for all rules: building one per rule costs more than the rules' engine work.
    return [pd.DataFrame({
        "row": rows[local],
        "claim_id": shard.claim[local],
        "line_no": shard.line_no[local],
        "rule_id": per_rule("id"),
        "cause": per_rule("cause"),
        "severity": np.concatenate([f.severity for f in fired]),
        "carc": per_rule("denial_code"),
        "message": np.concatenate([f.message for f in fired]),
        "fix": np.concatenate([f.fix for f in fired]),
    })]


_SHARED: tuple[pd.DataFrame, RulePack, date] | None = None  # set before forking (see _in_workers)


def _scrub_shard(rows: np.ndarray) -> list[pd.DataFrame]:
    """A worker's shard (runs in a forked process that shares the batch copy-on-write)."""
    assert _SHARED is not None
    return scrub_lines(_SHARED[0], rows, _SHARED[1], _SHARED[2])


def _in_workers(base: pd.DataFrame, shards: list[np.ndarray], pack: RulePack, run_date: date) -> list[pd.DataFrame]:
    """Scrub the shards in forked processes; each creates its own engine rulesets (P20)."""
    global _SHARED
    _SHARED = (base, pack, run_date)
    try:
        with fork_pool(len(shards)) as pool:
            return [part for parts in pool.map(_scrub_shard, shards) for part in parts]
    finally:
        _SHARED = None


def patient_shards(patient_id: pd.Series, count: int) -> list[np.ndarray]:
    """Split the rows into `count` shards by patient, each patient (and all missing ids) in one shard,
    rows in input order within a shard."""
    shard = shard_of(patient_id, count)
    shards = [np.flatnonzero(shard == i) for i in range(count)]
    return [rows for rows in shards if len(rows)]  # one patient's batch leaves the other shards empty


def shard_of(patient_id: pd.Series, count: int) -> np.ndarray:
    """Each line's shard among `count`: a hash of its patient id (every missing id hashes alike)."""
    return pd.util.hash_pandas_object(patient_id, index=False).to_numpy() % np.uint64(count)


def collect(parts: list[pd.DataFrame]) -> ScrubResult:
    """The findings of every shard in one frame, sorted by row, then rule id."""
    findings = (
        pd.concat(parts, ignore_index=True).sort_values(["row", "rule_id"], kind="stable").reset_index(drop=True)
        if parts else pd.DataFrame({c: pd.Series(dtype=object) for c in FINDING_COLUMNS})
    )
    return ScrubResult(findings)


def default_workers() -> int:
    """Worker processes by default: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def scrub(batch: ClaimBatch, pack: RulePack, run_date: date, workers: int = 1) -> ScrubResult:
    """Evaluate every rule of the pack on every line of the batch.

    Facts that span patients (sessions, claim line keys) are derived over the whole batch first. With
    `workers` > 1 the lines are then split by patient across forked processes: everything else a
    rule reads is exact within one patient's lines, so findings are the same, in the same order,
    whatever the number of workers.
    """
    if len(batch.typed) == 0:  # a header-only export: nothing to derive or evaluate
        return collect([])
    with stage("derive batch-wide facts"):
        base = derive(batch.typed, DeriveContext(pack.reference, run_date), fields_used(pack), scopes=("batch",))
    if workers > 1 and len(base) >= PARALLEL_MIN_LINES:  # forking pays off only for real work
        parts = _in_workers(base, patient_shards(base["patient_id"], workers), pack, run_date)
    else:
        parts = scrub_lines(base, np.arange(len(base)), pack, run_date)
    return collect(parts)
