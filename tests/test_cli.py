"""The command line as pipelines use it (claims contract §2 and §4), through the real entry point.

Every export carries PHI sentinels (a patient_id no message may ever show); every run asserts they
never reach stdout or stderr. The rules come from a small folder written here, run with
--no-bundled-rules, so the expected findings are known line by line; the bundled data files are
copied in beside them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import read_findings, run_cli, write_csv
from test_loader_errors import EXPECTED as EXPECTED_BAD_RULE_PROBLEMS

from scrubber.fields import CAUSES
from scrubber.loader import BUNDLED_RULES

SENTINEL = "PHI-SENTINEL-123"
RUN_DATE = "2026-09-30"
BAD_RULES = Path(__file__).resolve().parent / "fixtures" / "bad_rules"
SCRUB_COLUMNS = ["scrub_status", "scrub_causes", "scrub_rule_ids", "scrub_carcs", "scrub_messages"]
FINDING_KEYS = {
    "claim_id",
    "line_no",
    "rule_id",
    "cause",
    "severity",
    "carc",
    "message",
    "fix",
    "sources",
}

BASE_LINE: dict[str, str] = {
    "claim_id": "CLM-1",
    "line_no": "1",
    "patient_id": SENTINEL,
    "payer_type": "commercial",
    "payer_id": "UHC",
    "service_date": "2026-09-01",
    "submission_date": "2026-09-08",
    "cpt": "98960",
    "modifiers": "",
    "units": "1",
    "minutes": "30",
    "dx_codes": "E11.9",
    "pos": "11",
    "rendering_npi": "1234567893",
    "rendering_taxonomy": "163WD0400X",
    "billing_npi": "1558598797",
    "referring_npi": "1743829560",
    "order_date": "2026-08-15",
    "prior_auth_number": "",
    "session_id": "",
    "group_size": "1",
    "curriculum_id": "ADA-DSMES-2024",
    "charge": "45.00",
}

# rule id -> (cause, severity, carc, condition as YAML flow text, message)
TEST_RULES = {
    "TST_UNITS_OVER_FOUR": (
        "time_units",
        "deny",
        "151",
        "{field: units, op: gt, value: 4}",
        "{units} units billed; at most 4",
    ),
    "TST_CURRICULUM_MISSING": (
        "documentation",
        "at-risk",
        "16",
        "{field: curriculum_id, op: missing}",
        "{cpt} has no curriculum",
    ),
    "TST_INPUT_UNREADABLE": (
        "invalid_input",
        "deny",
        "16",
        "{field: unreadable_values, op: exists}",
        "cannot read: {unreadable_values}",
    ),
}
RULE_TEMPLATE = """\
id: {rule_id}
name: probe-for-cli-tests
summary: A rule written by the command-line tests.
cause: {cause}
severity: {severity}
carc: "{carc}"
when: {when}
message: "{message}"
fix: Correct the line.
sources:
  - {{title: "tests/test_cli.py", url: "https://example.org/cli"}}
examples:
  fires:
    - {{title: placeholder, line: {{}}}}
  passes:
    - {{title: placeholder, line: {{}}}}
"""


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "rules"
    folder.mkdir()
    for name in ("baseline_line.yaml", "code_sets.yaml", "payers.yaml"):
        shutil.copy(BUNDLED_RULES / name, folder / name)
    shutil.copytree(BUNDLED_RULES / "tables", folder / "tables")
    for rule_id, (cause, severity, carc, when, message) in TEST_RULES.items():
        text = RULE_TEMPLATE.format(
            rule_id=rule_id, cause=cause, severity=severity, carc=carc, when=when, message=message
        )
        (folder / f"{rule_id}.yaml").write_text(text, encoding="utf-8")
    return folder


def line(n: int, **changes: Any) -> dict[str, str]:
    return {
        **BASE_LINE,
        "claim_id": f"CLM-{n}",
        "patient_id": f"{SENTINEL}-{n}",
        **{k: str(v) for k, v in changes.items()},
    }


def cli(*args: str | Path) -> Any:
    """Run `scrubber`; no PHI sentinel may appear in what it prints, whatever the outcome."""
    result = run_cli(*map(str, args))
    assert SENTINEL not in result.stdout and SENTINEL not in result.stderr, "PHI printed"
    return result


def scrub(rules_dir: Path, export: Path, out: Path, *extra: str) -> Any:
    return cli(
        "run",
        export,
        "--out",
        out,
        "--rules",
        rules_dir,
        "--no-bundled-rules",
        "--run-date",
        RUN_DATE,
        *extra,
    )


def read_annotated(out: Path) -> list[dict[str, str]]:
    with (out / "annotated.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def assert_no_phi_in_outputs(out: Path) -> None:
    for name in ("findings.jsonl", "summary.json"):
        assert SENTINEL not in (out / name).read_text(encoding="utf-8"), name


# -- exit codes 0 and 1 --------------------------------------------------------------------------
def test_clean_export_exits_0_and_writes_every_output(rules_dir: Path, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "clean.csv", [line(1), line(2, line_no=2)])
    out = tmp_path / "out"
    result = scrub(rules_dir, export, out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "annotated.csv",
        "findings.jsonl",
        "junit.xml",
        "report.html",
        "summary.json",
        "summary.md",
    ]
    assert [r["scrub_status"] for r in read_annotated(out)] == ["clean", "clean"]
    assert read_findings(out) == []
    assert_no_phi_in_outputs(out)


def test_a_deny_finding_exits_1_by_default_and_0_with_fail_on_never(
    rules_dir: Path, tmp_path: Path
) -> None:
    export = write_csv(tmp_path / "deny.csv", [line(1), line(2, units=5)])
    default = scrub(rules_dir, export, tmp_path / "out1")
    assert default.returncode == 1, default.stderr
    never = scrub(rules_dir, export, tmp_path / "out2", "--fail-on", "never")
    assert never.returncode == 0, never.stderr
    assert [f["rule_id"] for f in read_findings(tmp_path / "out2")] == ["TST_UNITS_OVER_FOUR"]


def test_at_risk_only_export_exits_0_by_default_and_1_with_fail_on_at_risk(
    rules_dir: Path, tmp_path: Path
) -> None:
    export = write_csv(tmp_path / "risk.csv", [line(1, curriculum_id=""), line(2)])
    default = scrub(rules_dir, export, tmp_path / "out1")
    assert default.returncode == 0, default.stderr
    strict = scrub(rules_dir, export, tmp_path / "out2", "--fail-on", "at-risk")
    assert strict.returncode == 1, strict.stderr
    assert [f["severity"] for f in read_findings(tmp_path / "out2")] == ["at-risk"]


def test_select_limits_the_run_to_the_chosen_rules(rules_dir: Path, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "both.csv", [line(1, units=5, curriculum_id="")])
    result = scrub(rules_dir, export, tmp_path / "out", "--select", "TST_CURRICULUM_MISSING")
    assert result.returncode == 0, result.stderr  # the deny rule was not selected
    assert [f["rule_id"] for f in read_findings(tmp_path / "out")] == ["TST_CURRICULUM_MISSING"]


def test_select_keeps_the_input_problem_rules_and_ignore_drops_them(tmp_path: Path) -> None:
    """A pipeline gating on one cause must not pass a line whose values that cause needs cannot be read."""
    export = write_csv(tmp_path / "export.csv", [line(1, cpt="98961", group_size="three")])
    selected = run_cli("run", str(export), "--out", str(tmp_path / "selected"), "--select", "group_code",
                       "--run-date", "2026-09-20")
    assert selected.returncode == 1, selected.stderr
    assert [f["rule_id"] for f in read_findings(tmp_path / "selected")] == ["INPUT_UNREADABLE_VALUE"]
    # The reports say that only some rules ran: "clean" means clean of those.
    assert json.loads((tmp_path / "selected" / "summary.json").read_text())["run"]["select"] == ["group_code"]
    assert "rules; --select group_code)" in (tmp_path / "selected" / "report.html").read_text(encoding="utf-8")
    assert "rules; --select group\\_code)" in (tmp_path / "selected" / "summary.md").read_text(encoding="utf-8")
    ignored = run_cli("run", str(export), "--out", str(tmp_path / "ignored"), "--select", "group_code",
                      "--ignore", "invalid_input", "--run-date", "2026-09-20")
    assert ignored.returncode == 0, ignored.stderr
    assert read_findings(tmp_path / "ignored") == []


# -- exit code 2: nothing written ------------------------------------------------------------------
def _export(tmp_path: Path, rows: list[dict[str, str]] | None = None, **kw: Any) -> Path:
    return write_csv(tmp_path / "export.csv", rows or [line(1), line(2, units=5)], **kw)


# Each case: (the arguments after `run`, words the reason must contain). `OWN` stands for this
# module's rules folder (only those rules); a case may give its own --rules instead.
OWN = "--own-rules"
Case = tuple[list[Any], list[str]]


def _missing_input(tmp_path: Path) -> Case:
    return [tmp_path / "no-such-export.csv", OWN], ["no-such-export.csv", "no such file"]


def _bad_format(tmp_path: Path) -> Case:
    return [_export(tmp_path), OWN, "--format", "xlsx"], ["--format", "xlsx"]


def _unknown_select(tmp_path: Path) -> Case:
    return [_export(tmp_path), OWN, "--select", "TST_NO_SUCH_RULE"], ["TST_NO_SUCH_RULE"]


def _missing_column(tmp_path: Path) -> Case:
    columns = [c for c in BASE_LINE if c != "rendering_npi"]
    rows = [{k: v for k, v in line(1).items() if k in columns}]
    return [_export(tmp_path, rows, columns=columns), OWN], ["rendering_npi", "--mapping"]


def _broken_rules(tmp_path: Path) -> Case:
    reasons = ["problems in the rules", "EDU_MANY_MISTAKES.yaml:7:1", "`scrubber rules check` lists every one"]
    return [_export(tmp_path), "--rules", BAD_RULES], reasons  # layered over the bundled pack


def _not_jsonl(tmp_path: Path) -> Case:
    export = tmp_path / "export.jsonl"
    bad_lines = f'["{SENTINEL}", "not an object"]\n{{{SENTINEL}\n'
    export.write_text(json.dumps(line(1)) + "\n" + bad_lines, encoding="utf-8")
    return [export, OWN], ["export.jsonl"]


def _not_parquet(tmp_path: Path) -> Case:
    export = tmp_path / "export.parquet"
    export.write_bytes(b"PAR1" + SENTINEL.encode() * 10)
    return [export, OWN], ["export.parquet"]


def _not_gzip(tmp_path: Path) -> Case:
    export = tmp_path / "export.csv.gz"
    export.write_bytes(b"claim_id," + SENTINEL.encode())
    return [export, OWN], ["export.csv.gz"]


def _unknown_mapping_header(tmp_path: Path) -> Case:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('rendering_npi: "Rendering Provider"\n', encoding="utf-8")
    return [_export(tmp_path), OWN, "--mapping", mapping], ["Rendering Provider"]


def _mapped_header_twice(tmp_path: Path) -> Case:
    columns = [("Qty" if c == "units" else c) for c in BASE_LINE] + ["Qty "]  # a second Qty (csv strips the space)
    rows = [{**{("Qty" if k == "units" else k): v for k, v in line(1).items()}, "Qty ": "7"}]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('units: "Qty"\n', encoding="utf-8")
    return [_export(tmp_path, rows, columns=columns), OWN, "--mapping", mapping], ["'Qty' (mapped to units)", "more than once"]


def _one_header_mapped_to_two_columns(tmp_path: Path) -> Case:
    columns = [("Member" if c == "patient_id" else c) for c in BASE_LINE if c != "claim_id"]
    rows = [{("Member" if k == "patient_id" else k): v for k, v in line(1).items() if k != "claim_id"}]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('claim_id: "Member"\npatient_id: "Member"\n', encoding="utf-8")
    return [_export(tmp_path, rows, columns=columns), OWN, "--mapping", mapping], ["mapping.yaml:2:13", "claim_id and patient_id"]


def _utf16_without_bom(tmp_path: Path) -> Case:
    export = _export(tmp_path)
    export.write_bytes(export.read_text(encoding="utf-8").encode("utf-16-le"))
    return [export, OWN], ["export.csv: the header row holds NUL bytes", "UTF-16 without a byte-order mark"]


def _gzip_named_csv(tmp_path: Path) -> Case:
    export = _export(tmp_path)
    export.write_bytes(gzip.compress(export.read_bytes()))
    return [export, OWN], ["export.csv: is gzip-compressed; name it .csv.gz"]


EXIT_2_CASES = {
    "missing-input-file": _missing_input,
    "bad-format": _bad_format,
    "unknown-select-id": _unknown_select,
    "required-column-missing": _missing_column,
    "broken-rules-folder": _broken_rules,
    "jsonl-lines-not-objects": _not_jsonl,
    "corrupt-parquet": _not_parquet,
    "corrupt-gzip": _not_gzip,
    "mapping-names-absent-header": _unknown_mapping_header,
    "mapped-header-twice": _mapped_header_twice,
    "bad-workers": lambda tmp_path: ([_export(tmp_path), OWN, "--workers", "0"], ["--workers"]),
    "same-input-twice": lambda tmp_path: ([_export(tmp_path), OWN, tmp_path / "." / "export.csv"],
                                          ["export.csv: given twice as an input"]),
    "one-header-mapped-to-two-columns": _one_header_mapped_to_two_columns,
    "utf16-without-byte-order-mark": _utf16_without_bom,
    "gzip-named-csv": _gzip_named_csv,
}


# Every case without an --out folder yet; a few again with a previous run's output in place.
EXIT_2_RUNS = [(case, False) for case in EXIT_2_CASES] + [
    (case, True)
    for case in (
        "missing-input-file",
        "required-column-missing",
        "broken-rules-folder",
        "corrupt-parquet",
    )
]


@pytest.mark.parametrize(
    "case, previous_output",
    EXIT_2_RUNS,
    ids=[f"{c}-{'previous-out' if p else 'no-out'}" for c, p in EXIT_2_RUNS],
)
def test_exit_2_prints_the_reason_and_leaves_out_alone(
    rules_dir: Path, tmp_path: Path, case: str, previous_output: bool
) -> None:
    args, reason = EXIT_2_CASES[case](tmp_path)
    own = ["--rules", rules_dir, "--no-bundled-rules"]
    args = [x for arg in args for x in (own if arg == OWN else [arg])]
    parent = tmp_path / "results"
    parent.mkdir()
    out = parent / "out"
    if previous_output:
        out.mkdir()
        (out / "annotated.csv").write_text("from the previous run\n", encoding="utf-8")
        (out / "summary.json").write_text("{}\n", encoding="utf-8")
    before = snapshot(parent)
    result = cli("run", *args, "--out", out, "--run-date", RUN_DATE)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip(), "exit 2 without a reason"
    for text in reason:
        assert text.lower() in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # click's usage errors included
    assert "Traceback" not in result.stderr
    assert snapshot(parent) == before  # not created, not changed, no staging folder left beside it
    assert sorted(p.name for p in parent.iterdir()) == (["out"] if previous_output else [])


@pytest.mark.parametrize("under", [False, True])
def test_an_out_path_on_a_file_is_refused_before_scrubbing(rules_dir: Path, tmp_path: Path, under: bool) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder\n", encoding="utf-8")
    out = taken / "out" if under else taken
    result = cli("run", _export(tmp_path), "--rules", rules_dir, "--no-bundled-rules", "--out", out, "--run-date", RUN_DATE)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"scrubber: error: --out {out}: {taken} is a file, not a folder" if under else
                                     f"scrubber: error: --out {out}: a file is there; give a folder (it is created, or replaced whole)")
    assert taken.read_text(encoding="utf-8") == "not a folder\n"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's sysfs: a folder no one may write in, root included")
def test_an_out_folder_that_cannot_be_written_is_refused_before_scrubbing(rules_dir: Path, tmp_path: Path) -> None:
    out = Path("/sys/kernel/scrubber-out")
    result = cli("run", _export(tmp_path), "--rules", rules_dir, "--no-bundled-rules", "--out", out, "--run-date", RUN_DATE)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"scrubber: error: --out {out}: cannot write in /sys/kernel ("), result.stderr
    assert not out.exists()


def test_an_out_folder_holding_other_files_is_refused_and_left_alone(rules_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "yesterday.csv").write_text("an earlier export\n", encoding="utf-8")
    (folder / "archive").mkdir()
    before = snapshot(folder)
    result = cli("run", _export(tmp_path), "--rules", rules_dir, "--no-bundled-rules", "--out", folder, "--run-date", RUN_DATE)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"scrubber: error: --out {folder}: the folder holds 2 file(s) or folder(s) that are "
                                     "not scrubber outputs, which replacing it would delete; give a new or empty folder, "
                                     "or a previous output folder")
    assert snapshot(folder) == before and (folder / "archive").is_dir()


def test_an_input_inside_out_or_a_folder_named_like_an_output_is_refused(rules_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    export = _export(folder).rename(folder / "annotated.csv")  # an export named like an output file
    for out in (folder, tmp_path):
        result = cli("run", export, "--rules", rules_dir, "--no-bundled-rules", "--out", out, "--run-date", RUN_DATE)
        assert result.returncode == 2
        assert result.stderr.strip() == (f"scrubber: error: --out {out}: input {export} is inside it, and replacing the "
                                         "folder would delete it; give an output folder apart from the inputs")
    out = tmp_path / "out"
    (out / "summary.json").mkdir(parents=True)  # a folder, not a previous run's file
    (out / "summary.json" / "keep.csv").write_text("kept\n", encoding="utf-8")
    result = cli("run", export, "--rules", rules_dir, "--no-bundled-rules", "--out", out, "--run-date", RUN_DATE)
    assert result.returncode == 2 and "not scrubber outputs" in result.stderr
    assert (out / "summary.json" / "keep.csv").read_text(encoding="utf-8") == "kept\n"
    assert export.exists()


def test_a_previous_output_folder_is_replaced_and_keeps_its_permissions(rules_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = cli("run", _export(tmp_path), "--rules", rules_dir, "--no-bundled-rules", "--out", out, "--run-date", RUN_DATE)
    assert first.returncode in (0, 1), first.stderr
    assert out.stat().st_mode & 0o777 == 0o777 & ~_umask()
    out.chmod(0o2775)
    again = cli("run", _export(tmp_path), "--rules", rules_dir, "--no-bundled-rules", "--out", out, "--run-date", RUN_DATE)
    assert again.returncode == first.returncode, again.stderr
    assert out.stat().st_mode & 0o7777 == 0o2775
    assert {p.name for p in out.iterdir()} == {"annotated.csv", "findings.jsonl", "summary.json", "summary.md",
                                               "report.html", "junit.xml"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_member_ids_mapped_into_a_date_column_are_not_echoed(tmp_path: Path) -> None:
    # A swapped mapping puts "Member ID" in submission_date: every line is unreadable there, and
    # the member ids must not reach the messages and reports.
    samples = Path(__file__).resolve().parents[1] / "samples"
    mapping = tmp_path / "swapped.yaml"
    mapping.write_text((samples / "alt_mapping.yaml").read_text(encoding="utf-8")
                       .replace('patient_id: "Member ID"', 'patient_id: "Bill Date"')
                       .replace('submission_date: "Bill Date"', 'submission_date: "Member ID"'), encoding="utf-8")
    out = tmp_path / "out"
    done = cli("run", samples / "alt_export.csv", "--mapping", mapping, "--out", out, "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    with (samples / "alt_export.csv").open(newline="", encoding="utf-8") as handle:
        members = {row["Member ID"] for row in csv.DictReader(handle)}
    messages = [f["message"] for f in read_findings(out) if f["rule_id"] == "INPUT_UNREADABLE_VALUE"]
    assert len(messages) == 59 and any("submission_date: a value (not shown) is not a date" in m for m in messages)
    for name in ("findings.jsonl", "summary.json", "summary.md", "junit.xml", "report.html"):
        text = (out / name).read_text(encoding="utf-8")
        assert not [m for m in members if f"'{m}'" in text or f">{m}<" in text], name
    assert not [m for m in members if m in done.stdout + done.stderr]


def test_broken_rules_folder_is_one_line_under_run_and_every_problem_under_rules_check(tmp_path: Path) -> None:
    result = cli("run", _export(tmp_path), "--out", tmp_path / "out", "--rules", BAD_RULES, "--no-bundled-rules")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"scrubber: error: {len(EXPECTED_BAD_RULE_PROBLEMS)} problems in the rules: "
        f"{BAD_RULES / 'edu' / 'EDU_MANY_MISTAKES.yaml'}:7:1: unknown key 'rationle' (did you mean 'rationale'?); "
        "expected one of: id, name, status, summary, cause, severity, severity_by_payer_type, carc, group_code, rarc, "
        "when, message, fix, rationale, sources, unverified, examples, effective_from, effective_to, disabled "
        f"(and {len(EXPECTED_BAD_RULE_PROBLEMS) - 1} more); `scrubber rules check` lists every one")
    assert not (tmp_path / "out").exists()
    result = cli("rules", "check", BAD_RULES, "--no-bundled-rules")
    assert result.returncode == 2
    located = re.findall(r"(\S+\.yaml):(\d+):(\d+): error: ", result.stderr)
    files = {Path(p).name for p, _, _ in located}
    assert files == {
        "EDU_MANY_MISTAKES.yaml",
        "EDU_NO_EXAMPLES.yaml",
        "EDU_NO_SOURCES.yaml",
        "PT_BAD_REGEX.yaml",
        "PT_DUPLICATE.yaml",
        "PT_TYPO_IN_CONDITION.yaml",
    }
    assert len(located) == len(EXPECTED_BAD_RULE_PROBLEMS)


# -- the output contract -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed_run(rules_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """Four lines: clean, at-risk only, deny + at-risk, unreadable units; plus an extra column."""
    tmp = tmp_path_factory.mktemp("mixed")
    rows = [
        line(1, charge="10.00"),
        line(2, curriculum_id="", charge="20.50", payer_type="medicaid"),
        line(3, units=6, curriculum_id="", charge="30.25"),
        line(4, units="two", charge=""),
    ]
    for i, row in enumerate(rows):
        row["clinic_note"] = f"note {i}"
    columns = [*list(BASE_LINE)[:3], "clinic_note", *list(BASE_LINE)[3:]]
    export = write_csv(tmp / "mixed.csv", rows, columns=columns)
    out = tmp / "out"
    result = scrub(rules_dir, export, out, "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    return export, out, result


def test_findings_jsonl_has_the_contract_fields(mixed_run: tuple[Path, Path, Any]) -> None:
    _, out, _ = mixed_run
    findings = read_findings(out)
    assert [(f["claim_id"], f["line_no"], f["rule_id"]) for f in findings] == [
        ("CLM-2", 1, "TST_CURRICULUM_MISSING"),
        ("CLM-3", 1, "TST_CURRICULUM_MISSING"),
        ("CLM-3", 1, "TST_UNITS_OVER_FOUR"),
        ("CLM-4", 1, "TST_INPUT_UNREADABLE"),
    ]
    for f in findings:
        assert set(f) == FINDING_KEYS
        assert isinstance(f["line_no"], int)
        assert f["cause"] in CAUSES and f["severity"] in ("deny", "at-risk")
        assert re.fullmatch(r"(CO|OA|PR|PI|CR)-\w+", f["carc"])
        assert f["fix"] == "Correct the line."
        assert f["sources"] and all(isinstance(s, str) for s in f["sources"])
    by_rule = {f["rule_id"]: f for f in findings}
    assert by_rule["TST_UNITS_OVER_FOUR"]["message"] == "6 units billed; at most 4"
    assert by_rule["TST_UNITS_OVER_FOUR"]["carc"] == "CO-151"
    assert by_rule["TST_UNITS_OVER_FOUR"]["severity"] == "deny"
    assert by_rule["TST_CURRICULUM_MISSING"]["message"] == "98960 has no curriculum"
    unreadable = by_rule["TST_INPUT_UNREADABLE"]
    assert unreadable["cause"] == "invalid_input" and "units" in unreadable["message"]
    assert_no_phi_in_outputs(out)


def test_annotated_csv_has_every_line_every_column_and_scrub_columns(
    mixed_run: tuple[Path, Path, Any],
) -> None:
    export, out, _ = mixed_run
    with export.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        cells = list(reader)
    with (out / "annotated.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        out_header = next(reader)
        out_cells = list(reader)
    assert out_header == header + SCRUB_COLUMNS
    assert [row[: len(header)] for row in out_cells] == cells  # untouched, in order, exactly once
    rows = read_annotated(out)
    assert [r["scrub_status"] for r in rows] == ["clean", "at-risk", "deny", "deny"]
    clean, risk, both, unreadable = rows
    assert [clean[c] for c in SCRUB_COLUMNS[1:]] == ["", "", "", ""]
    assert (
        risk["scrub_causes"] == "documentation"
        and risk["scrub_rule_ids"] == "TST_CURRICULUM_MISSING"
    )
    assert risk["scrub_carcs"] == "CO-16" and risk["scrub_messages"] == "98960 has no curriculum"
    assert both["scrub_causes"] == "documentation;time_units"
    assert both["scrub_rule_ids"] == "TST_CURRICULUM_MISSING;TST_UNITS_OVER_FOUR"
    assert set(both["scrub_carcs"].split(";")) == {"CO-16", "CO-151"}
    assert sorted(both["scrub_messages"].split(" | ")) == [
        "6 units billed; at most 4",
        "98960 has no curriculum",
    ]
    assert unreadable["scrub_causes"] == "invalid_input"


def test_summary_json_counts_hashes_and_versions(mixed_run: tuple[Path, Path, Any]) -> None:
    export, out, result = mixed_run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["by_status"] == {"clean": 1, "at-risk": 1, "deny": 2}
    assert summary["by_cause"] == {"documentation": 2, "invalid_input": 1, "time_units": 1}
    assert summary["by_rule"] == {
        "TST_CURRICULUM_MISSING": 2,
        "TST_INPUT_UNREADABLE": 1,
        "TST_UNITS_OVER_FOUR": 1,
    }
    assert (
        summary["by_payer"]["commercial"]["lines"] == 3
        and summary["by_payer"]["medicaid"]["lines"] == 1
    )
    dollars = summary["dollars_at_risk"]
    assert dollars["total"] == pytest.approx(20.50 + 30.25)  # line 4 has no charge
    assert dollars["deny"] == pytest.approx(30.25) and dollars["at-risk"] == pytest.approx(20.50)
    [source] = summary["inputs"]
    assert source["sha256"] == hashlib.sha256(export.read_bytes()).hexdigest()
    assert source["lines"] == 4
    assert summary["rules"]["version"]
    assert isinstance(summary["run"]["seconds"], int | float) and summary["run"]["seconds"] >= 0
    assert summary["lines"]["total"] == 4
    assert "4 lines" in result.stdout or "4 line" in result.stdout


def test_the_bundled_pack_by_default_passes_its_own_baseline_line(tmp_path: Path) -> None:
    """No --rules: the bundled pack runs, and its baseline line (a valid claim line) is clean."""
    from scrubber.yamlfile import load

    baseline, problems = load(BUNDLED_RULES / "baseline_line.yaml")
    assert problems == []
    row = {k: "" if v is None else str(v) for k, v in baseline.items()} | {"patient_id": SENTINEL}
    export = write_csv(tmp_path / "baseline.csv", [row])
    result = cli("run", export, "--out", tmp_path / "out", "--run-date", RUN_DATE)
    assert result.returncode == 0, result.stderr
    assert read_findings(tmp_path / "out") == []
    assert [r["scrub_status"] for r in read_annotated(tmp_path / "out")] == ["clean"]


def test_rules_list_refuses_an_unknown_cause_naming_the_right_one() -> None:
    result = cli("rules", "list", "--cause", "groupcode")
    assert result.returncode == 2
    assert result.stderr.startswith("scrubber: error: --cause 'groupcode' is not a cause (did you mean 'group_code'?)")
    listed = cli("rules", "list", "--cause", "group_code").stdout.strip().splitlines()
    assert listed[-1] == f"{len(listed) - 2} rules" and len(listed) > 3  # header, rules, count


@pytest.mark.parametrize("command", [["run", "export.csv", "--out", "out"], ["rules", "check"], ["rules", "test"]])
def test_no_bundled_rules_without_a_folder_of_ones_own_is_a_one_line_error(command: list[str]) -> None:
    result = cli(*command, "--no-bundled-rules")
    assert result.returncode == 2
    assert result.stderr.strip() == "scrubber: error: --no-bundled-rules needs a rules folder of your own to load instead"


@pytest.mark.parametrize("value, kind", [("5", "a number"), ("", "nothing"), ("[]", "an empty list"),
                                         ("[\"Proc\", \"Code\"]", "a list")])
def test_a_mapping_value_of_the_wrong_kind_is_located(tmp_path: Path, value: str, kind: str) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(f'claim_id: "claim_id"\ncpt: {value}\n', encoding="utf-8")
    result = cli("run", _export(tmp_path), "--mapping", mapping, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.startswith(f"scrubber: error: {mapping}:2:{6 if value else 5}: cpt is mapped to {kind}; expected lines"), result.stderr
