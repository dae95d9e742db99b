"""End-to-end: the bundled samples through the real CLI, against the generator's own labels.

`samples/expected/*.expected.csv` hold the rule ids each sample line was constructed to trigger
(written by samples/generate.py from its scenario labels, never by running the scrubber). A
mismatch is either a scenario mistake or a rule defect; the failure message lists the lines that
differ by claim_id:line_no, never by patient id.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, run_cli

EXPECTED = SAMPLES / "expected"
CASES = {
    "clinic_export": (SAMPLES / "clinic_export.csv", None),
    "alt_export": (SAMPLES / "alt_export.csv", SAMPLES / "alt_mapping.yaml"),
}
GENERATED = [
    "clinic_export.csv",
    "alt_export.csv",
    "alt_mapping.yaml",
    "expected/clinic_export.expected.csv",
    "expected/alt_export.expected.csv",
    "README.md",
]


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _ids(value: str) -> str:
    return ";".join(sorted(i for i in (value or "").split(";") if i))


@pytest.fixture(scope="module", params=sorted(CASES))
def scrubbed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    name = request.param
    sample, mapping = CASES[name]
    out = tmp_path_factory.mktemp(name) / "out"
    args = ["run", str(sample), "--out", str(out)]
    if mapping is not None:
        args += ["--mapping", str(mapping)]
    result = run_cli(*args)
    return name, sample, out, result


def test_exit_code_reports_deny_findings(scrubbed) -> None:
    name, _sample, _out, result = scrubbed
    assert result.returncode == 1, f"{name}: exit code {result.returncode}; stderr: {result.stderr[-2000:]}"


def test_every_input_line_once_in_order_unchanged(scrubbed) -> None:
    name, sample, out, _result = scrubbed
    in_header, in_rows = _read(sample)
    out_header, out_rows = _read(out / "annotated.csv")
    assert out_header[: len(in_header)] == in_header, f"{name}: input columns not kept in their order"
    assert "scrub_rule_ids" in out_header
    assert len(out_rows) == len(in_rows), f"{name}: {len(in_rows)} input lines, {len(out_rows)} annotated"
    claim_col, line_col = ("claim_id", "line_no") if "claim_id" in in_header else ("Claim #", "Line")
    changed = []
    for number, (src, got) in enumerate(zip(in_rows, out_rows, strict=True), start=2):
        columns = [c for c in in_header if src[c] != got[c]]
        if columns:
            # name the line by its key and the columns only: cell values may be PHI
            changed.append(f"  {src[claim_col]}:{src[line_col]} (row {number}): columns {columns} changed")
    assert not changed, f"{name}: annotated lines differ from the input:\n" + "\n".join(changed[:40])


def test_rule_ids_match_scenario_labels(scrubbed) -> None:
    name, _sample, out, _result = scrubbed
    _h, expected = _read(EXPECTED / f"{name}.expected.csv")
    out_header, got = _read(out / "annotated.csv")
    claim_col, line_col = ("claim_id", "line_no") if "claim_id" in out_header else ("Claim #", "Line")
    assert len(got) == len(expected), f"{name}: {len(expected)} expected lines, {len(got)} annotated"
    diffs = []
    for number, (exp, row) in enumerate(zip(expected, got, strict=True), start=2):
        key = f"{exp['claim_id']}:{exp['line_no']}"
        assert (row[claim_col], row[line_col]) == (exp["claim_id"], exp["line_no"]), f"{name}: row {number} is not {key}"
        want, have = _ids(exp["rule_ids"]), _ids(row["scrub_rule_ids"])
        if want != have:
            missing = sorted(set(want.split(";")) - set(have.split(";")) - {""})
            extra = sorted(set(have.split(";")) - set(want.split(";")) - {""})
            diffs.append(
                f"  {key} (row {number}): expected [{want or 'clean'}] got [{have or 'clean'}]"
                + (f"  missing {missing}" if missing else "")
                + (f"  unexpected {extra}" if extra else "")
            )
    assert not diffs, f"{name}: {len(diffs)} line(s) differ from the scenario labels:\n" + "\n".join(diffs)


def test_clean_lines_use_valid_identifiers() -> None:
    """Independent of the rule pack: lines labelled free of NPI/DX findings carry valid NPIs and billable codes."""
    from scrubber.derive import npi_is_valid
    from scrubber.reference import load_icd10cm

    icd = load_icd10cm()
    _h, rows = _read(SAMPLES / "clinic_export.csv")
    _h, expected = _read(EXPECTED / "clinic_export.expected.csv")
    problems = []
    for row, exp in zip(rows, expected, strict=True):
        key = f"{exp['claim_id']}:{exp['line_no']}"
        rules = set(exp["rule_ids"].split(";"))
        for column, rule in (("rendering_npi", "NPI_RENDERING_INVALID"), ("billing_npi", "NPI_BILLING_INVALID"),
                             ("referring_npi", "NPI_REFERRING_INVALID")):
            if row[column] and rule not in rules and not npi_is_valid(row[column]):
                problems.append(f"{key}: {column} fails the check digit")
        if not rules & {"DX_FORMAT_INVALID", "DX_CODE_UNKNOWN", "DX_NOT_BILLABLE"}:
            for code in filter(None, row["dx_codes"].split(";")):
                if code.replace(".", "") not in icd.billable:
                    problems.append(f"{key}: {code} is not a billable ICD-10-CM code")
    assert not problems, "\n".join(problems)


def test_generator_reproduces_committed_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SAMPLES / "generate.py"), "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    differ = [name for name in GENERATED if (tmp_path / name).read_bytes() != (SAMPLES / name).read_bytes()]
    assert not differ, f"samples/generate.py no longer reproduces {differ}: run `python samples/generate.py` and commit"
