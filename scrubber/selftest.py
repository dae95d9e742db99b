"""Run rules' examples: each line merged over the baseline, through the same path as a real run.

Used by pytest (one test per example) and by `scrubber rules test`, so a rules-only change is
tested without writing Python.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from scrubber.claims import ClaimBatch, type_columns
from scrubber.errors import ConfigProblem
from scrubber.fields import COLUMNS_BY_NAME
from scrubber.loader import RulePack
from scrubber.model import Example, Rule
from scrubber.reference import MueTable, with_payer_settings_of
from scrubber.scrub import ScrubResult, scrub

EXAMPLE_RUN_DATE = date(2026, 9, 30)  # examples without submission_date are judged on this day


def lines_frame(lines: list[dict[str, Any]], baseline: dict[str, Any]) -> ClaimBatch:
    """A batch of example lines, each merged over the baseline line, as an export would read."""
    records = []
    for i, line in enumerate(lines):
        merged = {**baseline, "line_no": i + 1, **line}
        records.append({k: None if v is None else str(v) if not isinstance(v, str) else v for k, v in merged.items()})
    columns = list(dict.fromkeys([*baseline, *(k for line in lines for k in line)]))
    raw = pd.DataFrame.from_records(records, columns=columns).astype(object)
    raw = raw.where(raw.notna(), None)
    typed = type_columns(raw, {c: c for c in raw.columns if c in COLUMNS_BY_NAME})
    return ClaimBatch(raw, typed, [("example", len(raw))])


def scrub_lines(lines: list[dict[str, Any]], pack: RulePack, run_date: date = EXAMPLE_RUN_DATE) -> ScrubResult:
    return scrub(lines_frame(lines, pack.baseline), pack, run_date)


@dataclass(frozen=True)
class ExampleOutcome:
    rule_id: str
    example: Example
    passed: bool  # the example's expectation held (for a todo: the gap is still there)
    detail: str

    @property
    def label(self) -> str:
        kind = "todo-" + self.example.expect if self.example.todo else self.example.expect
        return f"{self.rule_id}-{kind}-{self.example.title}"


def check_example(rule: Rule, example: Example, pack: RulePack) -> ExampleOutcome:
    """Run one example against its rule alone and compare with what it expects."""
    single = replace(pack, rules=[rule], compiled=pack.compiled)
    if example.mue_table:
        values = {cpt: (mue, mai) for cpt, mue, mai in example.mue_table}
        table = MueTable("the example's MUE rows", date(2000, 1, 1), values, "")
        single = replace(single, reference=replace(pack.reference, mue_releases={table.effective_from: table}))
    result = scrub_lines(list(example.lines), single)
    fired_rows = set(result.findings.loc[result.findings["rule_id"] == rule.id, "row"].tolist())
    expected_rows = set(example.fires_on)
    problems = []
    if fired_rows != expected_rows:
        def show(rows: set[int]) -> str:
            return "no line" if not rows else "line(s) " + ", ".join(str(r) for r in sorted(rows))
        problems.append(f"expected the rule to fire on {show(expected_rows)}, it fired on {show(fired_rows)}")
    if example.message is not None and not problems and expected_rows:
        first = result.findings.loc[result.findings["rule_id"] == rule.id, "message"].iloc[0]
        if first != example.message:
            problems.append(f"expected message {example.message!r}, got {first!r}")
    if example.severity is not None and not problems and expected_rows:
        found = set(result.findings.loc[result.findings["rule_id"] == rule.id, "severity"])
        if found != {example.severity}:
            problems.append(f"expected severity {example.severity!r}, got {', '.join(sorted(found))}")
    held = not problems
    if example.todo:
        detail = "known gap still open" if not held else "todo example now behaves as expected: promote it to fires/passes"
        return ExampleOutcome(rule.id, example, not held, detail)
    return ExampleOutcome(rule.id, example, held, "; ".join(problems) or "ok")


def _with_base_payer_settings(pack: RulePack) -> RulePack:
    """The pack with the payer settings of its first folder only (the bundled pack's, unless
    --no-bundled-rules). The baseline line and that folder's examples are written for those
    settings: a later folder's payer profile (prior authorization for the baseline's code, a payer
    of its payer_id) changes what the rules find, and is not a rule that is too broad."""
    return replace(pack, reference=with_payer_settings_of(pack.reference, pack.dirs[0]))


def run_examples(pack: RulePack) -> list[ExampleOutcome]:
    """Every example; the first folder's rules' examples with that folder's payer settings, a later
    folder's (its new or replacing rules) with every folder's."""
    base = _with_base_payer_settings(pack)
    first = pack.dirs[0].resolve()
    return [check_example(rule, ex, base if Path(rule.path).resolve().is_relative_to(first) else pack)
            for rule in pack.rules for ex in rule.examples]


def baseline_findings(pack: RulePack) -> pd.DataFrame:
    """Findings of the whole pack on the baseline line, with the first folder's payer settings: must be empty."""
    return scrub_lines([{}], _with_base_payer_settings(pack)).findings


def baseline_problems(pack: RulePack) -> list[ConfigProblem]:
    """A problem for every rule that fires on the baseline clean line: its condition is too broad."""
    by_id = pack.by_id()
    return [
        ConfigProblem(by_id[rule_id].path, 1, 1, "the rule fires on the baseline clean line (baseline_line.yaml); "
                      "narrow its condition")
        for rule_id in sorted(set(baseline_findings(pack)["rule_id"]))
    ]
