"""The reports written beside the contract's files: junit.xml, summary.md, report.html, progress, and
dollars at risk with expected-payment estimates.

report.html in a real browser: tests/test_report_browser.py.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from scrubber.loader import RulePack
from scrubber.report import FAIL_ON
from tests.conftest import ROOT, SAMPLES, read_findings, run_cli, write_csv

sys.path.insert(0, str(ROOT / "benchmarks"))
from make_export import make_export  # noqa: E402  (the benchmark's generator: the sample, tiled)

SCHEMA = ROOT / "tests" / "fixtures" / "junit" / "junit-10.xsd"
REPORTS = ("report.html", "junit.xml", "summary.md")
SENTINEL = "PHI-SENTINEL-REPORTS-987"


def scrub(export: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("run", str(export), "--out", str(out), "--run-date", "2026-10-01", *args, env=env)


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled sample scrubbed once per --fail-on."""
    runs = {}
    for fail_on in FAIL_ON:
        out = tmp_path_factory.mktemp("sample") / f"out-{fail_on}"
        done = scrub(SAMPLES / "clinic_export.csv", out, "--fail-on", fail_on)
        assert done.returncode == (0 if fail_on == "never" else 1), done.stderr
        runs[fail_on] = out
    return runs


def summary_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


# -- junit.xml ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fail_on", list(FAIL_ON))
def test_junit_xml_is_valid_against_the_jenkins_junit_schema(sample_runs: dict[str, Path], fail_on: str) -> None:
    schema = xmlschema.XMLSchema(SCHEMA)
    schema.validate(sample_runs[fail_on] / "junit.xml")  # raises with the first violation


@pytest.mark.parametrize("fail_on", list(FAIL_ON))
def test_junit_has_one_case_per_rule_failing_when_the_rule_found_lines_at_or_above_fail_on(
    sample_runs: dict[str, Path], fail_on: str, pack: RulePack
) -> None:
    out = sample_runs[fail_on]
    root = ET.parse(out / "junit.xml").getroot()
    cases = root.findall("./testsuite/testcase")
    assert sorted(c.get("name") for c in cases) == sorted(r.id for r in pack.rules)
    causes = {r.id: r.cause for r in pack.rules}
    assert all(c.get("classname") == f"scrubber.{causes[c.get('name')]}" for c in cases)

    findings = read_findings(out)
    failing = {f["rule_id"] for f in findings if f["severity"] in FAIL_ON[fail_on]}
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == failing
    if fail_on == "never":
        assert not failed
    else:
        assert failing  # the sample has deny findings
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(cases)), str(len(failing)), "0")
    assert (root.get("tests"), root.get("failures")) == (str(len(cases)), str(len(failing)))
    for rule_id, failure in failed.items():
        text = failure.text or ""
        listed = [f for f in findings if f["rule_id"] == rule_id and f["severity"] in FAIL_ON[fail_on]]
        for f in listed:
            assert f"{f['claim_id']}:{f['line_no']}  {f['severity']}  {f['message']}" in text
        assert f"Fix: {listed[0]['fix']}\n" in text  # as written for the first line: no {cpt} left in it
        assert failure.get("message", "").startswith(tuple(f"{n} line" for n in range(1, 1000)))
    # Findings below --fail-on are listed without failing their case.
    for case in cases:
        below = [f for f in findings if f["rule_id"] == case.get("name") and f["severity"] not in FAIL_ON[fail_on]]
        out_text = case.findtext("system-out") or ""
        assert all(f"{f['claim_id']}:{f['line_no']}" in out_text for f in below)
        if not below:
            assert case.find("system-out") is None


def test_junit_lists_at_most_fifty_lines_per_rule_and_says_how_many_more(tmp_path: Path) -> None:
    export = tmp_path / "tiled.csv"
    make_export(3500).to_csv(export, index=False)
    out = tmp_path / "out"
    assert scrub(export, out, "--fail-on", "at-risk").returncode == 1
    counts = summary_of(out)["by_rule"]
    rule_id, n = max(counts.items(), key=lambda kv: kv[1])
    assert n > 50
    case = ET.parse(out / "junit.xml").getroot().find(f"./testsuite/testcase[@name='{rule_id}']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.text
    listed = [line for line in failure.text.splitlines() if re.match(r"\S+:\d+  (deny|at-risk)  ", line)]
    assert len(listed) == 50
    assert f"... and {n - 50:,} more lines" in failure.text
    xmlschema.XMLSchema(SCHEMA).validate(out / "junit.xml")


def test_junit_stays_well_formed_with_markup_and_control_characters_in_cells(tmp_path: Path, baseline: dict) -> None:
    claim = 'C<1>&"2\x01\x1b'
    export = write_csv(tmp_path / "odd.csv", [{**baseline, "claim_id": claim, "curriculum_id": ""}])
    out = tmp_path / "out"
    assert scrub(export, out, "--fail-on", "at-risk").returncode == 1
    xmlschema.XMLSchema(SCHEMA).validate(out / "junit.xml")
    case = ET.parse(out / "junit.xml").getroot().find("./testsuite/testcase[@name='EDU_CURRICULUM_MISSING']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert 'C<1>&"2\ufffd\ufffd:1' in (failure.text or "")  # shown as written; what XML cannot carry, replaced


# -- no patient identifiers ---------------------------------------------------------------------
def test_no_patient_identifier_reaches_the_reports_or_the_job_summary(tmp_path: Path, baseline: dict) -> None:
    lines = [
        {**baseline, "claim_id": "K1", "patient_id": SENTINEL, "curriculum_id": ""},
        {**baseline, "claim_id": "K2", "patient_id": SENTINEL + "-2", "units": "two"},
        {**baseline, "claim_id": "K3", "patient_id": SENTINEL + "-3", "payer_type": "medicare", "charge": ""},
        {**baseline, "claim_id": "K4", "patient_id": SENTINEL + "-4", "line_no": 1},  # duplicate line key with K4?
        {**baseline, "claim_id": "K4", "patient_id": SENTINEL + "-4", "line_no": 1},
    ]
    export = write_csv(tmp_path / "phi.csv", lines)
    out = tmp_path / "out"
    step_summary = tmp_path / "step_summary.md"
    done = scrub(export, out, "--fail-on", "at-risk", env={**os.environ, "GITHUB_STEP_SUMMARY": str(step_summary)})
    assert done.returncode == 1, done.stderr
    assert len(read_findings(out)) >= 4
    for path in [*(out / name for name in REPORTS), step_summary]:
        assert SENTINEL not in path.read_text(encoding="utf-8"), path.name
    assert SENTINEL not in done.stdout + done.stderr


# -- summary.md and $GITHUB_STEP_SUMMARY --------------------------------------------------------
def test_summary_md_gives_the_counts_dollars_causes_and_verdict(sample_runs: dict[str, Path]) -> None:
    out = sample_runs["deny"]
    summary = summary_of(out)
    text = (out / "summary.md").read_text(encoding="utf-8")
    lines = summary["lines"]
    assert text.startswith(f"## Claim scrub: {lines['total']:,} lines, {lines['deny']:,} deny, "
                           f"{lines['at-risk']:,} at-risk, {lines['clean']:,} clean")
    assert f"**exit 1**: {summary['findings_at_or_above_fail_on']} findings at or above `--fail-on deny`" in text
    assert f"**${summary['dollars_at_risk']['total']:,.2f}**" in text
    for cause, n in summary["by_cause"].items():
        assert f"| {cause.replace('_', chr(92) + '_')} | {n:,} |" in text
    assert summary["rules"]["version"].replace("+", "\\+") in text
    assert "clinic\\_export.csv (348 lines)" in text
    never = (sample_runs["never"] / "summary.md").read_text(encoding="utf-8")
    assert "**exit 0**: `--fail-on never`" in never


def test_summary_md_is_appended_to_github_step_summary(tmp_path: Path, baseline: dict) -> None:
    export = write_csv(tmp_path / "in.csv", [baseline, {**baseline, "claim_id": "C2", "curriculum_id": ""}])
    target = tmp_path / "step.md"
    target.write_text("# earlier step\n", encoding="utf-8")
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(target)}
    for n in (1, 2):
        assert scrub(export, tmp_path / f"out{n}", "--fail-on", "never", env=env).returncode == 0
    text = target.read_text(encoding="utf-8")
    first, second = ((tmp_path / f"out{n}" / "summary.md").read_text(encoding="utf-8") for n in (1, 2))
    assert text == f"# earlier step\n{first}\n{second}\n"  # each run adds its summary; nothing is lost


def test_an_unwritable_github_step_summary_warns_and_keeps_the_run(tmp_path: Path, baseline: dict) -> None:
    export = write_csv(tmp_path / "in.csv", [baseline, {**baseline, "claim_id": "C2", "units": 9}])
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(tmp_path)}  # a folder: cannot be opened for appending
    done = scrub(export, tmp_path / "out", env=env)
    assert done.returncode == 1  # the findings decide, as without the variable
    assert "could not append the summary to $GITHUB_STEP_SUMMARY" in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["annotated.csv", "findings.jsonl", "summary.json", *REPORTS])


# -- report.html (static checks; the browser test drives it) --------------------------------------
def embedded_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="scrub-data">(.*?)</script>', html, re.S)
    assert found
    return json.loads(found.group(1))


def test_report_html_is_self_contained_and_names_inputs_run_and_rule_pack(sample_runs: dict[str, Path]) -> None:
    out = sample_runs["deny"]
    html = (out / "report.html").read_text(encoding="utf-8")
    summary = summary_of(out)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # Nothing is loaded from anywhere: no src/href attributes, stylesheets, imports or remote urls.
    assert not re.search(r"\s(src|href|srcset|action)\s*=", html, re.I)
    assert not re.search(r"<link|@import|url\((?!#)", html, re.I)
    assert "clinic_export.csv" in html
    assert summary["rules"]["version"] in html and summary["run"]["started"] in html
    data = embedded_data(html)
    findings = read_findings(out)
    assert data["n"] == len(findings)
    first = findings[0]
    assert data["rule"]["v"][data["rule"]["c"][0]] == first["rule_id"]
    assert data["message"]["v"][data["message"]["c"][0]] == first["message"]
    assert "patient" not in json.dumps(list(data))


@pytest.mark.parametrize("fail_on, css", [("deny", "fail"), ("never", "warn")])
def test_report_html_verdict_is_green_only_when_nothing_was_found(sample_runs: dict[str, Path], fail_on: str,
                                                                  css: str) -> None:
    """Exit 0 under --fail-on never still has the sample's deny lines: the banner must not read as all clear."""
    html = (sample_runs[fail_on] / "report.html").read_text(encoding="utf-8")
    found = re.search(r'<div class="verdict (\w+)" id="verdict">([^<]*)</div>', html)
    assert found and found.group(1) == css
    if css == "warn":
        assert "but 56 line(s) would be denied and 50 are at risk" in found.group(2)


def test_report_html_escapes_every_value_from_the_export(tmp_path: Path, baseline: dict) -> None:
    evil = {
        "claim_id": '<img src=x onerror="window.pwned=1">',
        "payer_id": "</script><script>window.pwned=2</script>",
        "curriculum_id": "",
        "units": "<b>two</b>",
    }
    export = write_csv(tmp_path / "evil.csv", [{**baseline, **evil}])
    out = tmp_path / "out"
    assert scrub(export, out, "--fail-on", "never").returncode == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    for raw in ("<img", "</script><script>", "<b>two"):
        assert raw not in html
    data = embedded_data(html)
    assert data["claim"]["v"] == [evil["claim_id"]]  # the values come back exactly as read
    assert data["payer_id"]["v"] == [evil["payer_id"].upper()]  # payer ids are read upper-cased


# -- dollars at risk ------------------------------------------------------------------------------
def test_dollars_at_risk_use_the_charge_and_estimate_lines_without_one(tmp_path: Path, baseline: dict) -> None:
    no_curriculum = {"curriculum_id": ""}  # EDU_CURRICULUM_MISSING: at-risk
    lines = [
        {**baseline, **no_curriculum, "claim_id": "CHARGED", "charge": "45.00"},
        {**baseline, **no_curriculum, "claim_id": "MCD", "payer_type": "medicaid", "units": 2, "minutes": 60,
         "charge": ""},
        {**baseline, "claim_id": "MEDICARE", "payer_type": "medicare", "charge": ""},  # 98960: not payable
        {**baseline, "claim_id": "NOTABLE", "cpt": "99078", "charge": ""},  # EDU_99078_NONQHP; no table row
        {**baseline, "claim_id": "NOUNITS", "payer_type": "medicaid", "units": "two", "charge": ""},  # no units
        {**baseline, "claim_id": "CLEAN", "charge": ""},
    ]
    export = write_csv(tmp_path / "money.csv", [{**line, "patient_id": f"P-{line['claim_id']}"} for line in lines])
    out = tmp_path / "out"
    assert scrub(export, out, "--fail-on", "never").returncode == 0
    status = {f["claim_id"] for f in read_findings(out)}
    assert {"CHARGED", "MCD", "MEDICARE", "NOTABLE", "NOUNITS"} <= status and "CLEAN" not in status
    money = summary_of(out)["dollars_at_risk"]
    assert money["total"] == pytest.approx(45.0)  # charges only, as before
    assert money["flagged_lines_without_charge"] == 4
    est = money["estimated"]
    # Medicaid 98960: $25-40 per unit (UNVERIFIED seed range) x 2 units; Original Medicare 98960: $0.
    assert (est["low"], est["high"], est["lines"]) == (50.0, 80.0, 2)
    assert "UNVERIFIED" in est["basis"]
    assert money["flagged_lines_without_charge_or_estimate"] == 2
    by_payer = summary_of(out)["by_payer"]
    assert by_payer["medicaid"]["estimated_dollars_at_risk"] == {"low": 50.0, "high": 80.0}
    assert by_payer["medicare"]["estimated_dollars_at_risk"] == {"low": 0.0, "high": 0.0}


def test_the_expected_payment_table_labels_every_estimate_and_pays_nothing_for_medicare_education() -> None:
    import csv

    with (ROOT / "rules" / "tables" / "expected_payment.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["payer_type"], r["cpt"]) for r in rows} == {
        (p, c) for p in ("medicare", "medicaid", "commercial", "medicare_advantage") for c in ("98960", "98961", "98962")}
    for row in rows:
        if row["payer_type"] == "medicare":
            assert (row["per_unit_low"], row["per_unit_high"]) == ("0", "0")
        else:
            assert row["source"].startswith("UNVERIFIED estimate")
    seeds = {"medicaid": ("25", "40"), "commercial": ("35", "65"), "medicare_advantage": ("30", "50")}
    assert all((r["per_unit_low"], r["per_unit_high"]) == seeds[r["payer_type"]] for r in rows if r["payer_type"] in seeds)


def test_expected_payment_cells_are_checked_with_their_location(tmp_path: Path) -> None:
    folder = tmp_path / "practice-rules"
    (folder / "tables").mkdir(parents=True)
    (folder / "tables" / "expected_payment.csv").write_text(
        "payer_type,cpt,per_unit_low,per_unit_high,source\n"
        "medicare_part_b,98960,25,40,x\n"
        "medicaid,98960,abc,40,x\n", encoding="utf-8")
    done = run_cli("rules", "check", str(folder))
    assert done.returncode == 2
    assert "expected_payment.csv:2:1: error: payer_type 'medicare_part_b' is not valid" in done.stderr
    assert "expected_payment.csv:3:3: error: per_unit_low 'abc' is not valid" in done.stderr


# -- progress ------------------------------------------------------------------------------------
def run_on_a_terminal(args: list[str]) -> tuple[int, bytes, str]:
    """Run the CLI with stderr on a pseudo-terminal: (exit code, what the terminal got, stdout)."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "scrubber", *args], stdout=subprocess.PIPE,
                            stderr=terminal, stdin=subprocess.DEVNULL, env=env)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert proc.stdout is not None
    with proc.stdout:
        stdout = proc.stdout.read().decode()
    proc.wait(timeout=300)
    os.close(controller)
    return proc.returncode, shown, stdout


def test_progress_is_shown_on_a_terminal_and_never_in_pipes_or_with_quiet(tmp_path: Path) -> None:
    export = SAMPLES / "clinic_export.csv"
    code, shown, stdout = run_on_a_terminal(["run", str(export), "--out", str(tmp_path / "a"), "--fail-on", "never"])
    assert code == 0
    assert b"scrubber: " in shown and b"stages" in shown
    assert any(name.encode() in shown for name in ("load rules", "read", "scrub", "write"))
    assert "348 lines scrubbed" in stdout

    code, shown, stdout = run_on_a_terminal(["run", str(export), "--out", str(tmp_path / "b"), "--fail-on", "never",
                                             "--quiet"])
    assert (code, shown, stdout) == (0, b"", "")

    piped = scrub(export, tmp_path / "c", "--fail-on", "never")
    assert piped.returncode == 0 and piped.stderr == ""
