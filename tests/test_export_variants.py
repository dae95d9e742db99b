"""The same claims written the ways real exports write them get the same findings.

Each variant rewrites the bundled clinic sample cell by cell (its meaning unchanged), runs the real
entry point, and compares every line's status and rule ids with the run on the sample as written.
Variants come from practice-management exports, database unloads, spreadsheet re-saves and pandas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from conftest import read_findings, run_cli

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "clinic_export.csv"
RUN_DATE = "2026-11-20"
Row = dict[str, str]


def _read_sample() -> tuple[list[str], list[Row]]:
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _verdicts(out: Path) -> list[tuple[str, str]]:
    with (out / "annotated.csv").open(encoding="utf-8", newline="") as handle:
        return [(r["scrub_status"], r["scrub_rule_ids"]) for r in csv.DictReader(handle)]


def _scrub(export: Path, out: Path, *extra: str) -> list[tuple[str, str]]:
    result = run_cli("run", str(export), "--out", str(out), "--run-date", RUN_DATE, "--fail-on", "never",
                     "--workers", "1", *extra)
    assert result.returncode == 0, result.stderr
    return _verdicts(out)


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    verdicts = _scrub(SAMPLE, tmp_path_factory.mktemp("canonical") / "out")
    assert sum(status != "clean" for status, _ in verdicts) > 50  # the sample's findings are what is compared
    return verdicts


def _write(path: Path, header: list[str], rows: list[Row], line_end: str = "") -> Path:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(header)
    for row in rows:
        cells = io.StringIO()
        csv.writer(cells, lineterminator="").writerow([row.get(h, "") for h in header])
        text.write(cells.getvalue() + line_end + "\n")
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


def _dates(fmt: Callable[[date], str]) -> Callable[[Row], Row]:
    def change(row: Row) -> Row:
        for column in ("service_date", "submission_date", "order_date"):
            if row[column]:
                row[column] = fmt(date.fromisoformat(row[column]))
        return row
    return change


def _pandas_floats(row: Row) -> Row:
    """pandas writes a number column with a gap as floats: NPIs and POS gain a .0."""
    for column in ("rendering_npi", "billing_npi", "referring_npi", "pos"):
        if row[column].isdigit():
            row[column] = f"{int(row[column])}.0"
    if row["charge"]:
        row["charge"] = "$ " + row["charge"]
    return row


def _null_for_empty(row: Row) -> Row:
    return {k: ("NULL" if v == "" else v) for k, v in row.items()}


CELL_VARIANTS: dict[str, Callable[[Row], Row]] = {
    "us dates with a time of day": _dates(lambda d: f"{d.month}/{d.day}/{d.year} 0:00"),
    "report dates with seconds and AM": _dates(lambda d: f"{d:%m/%d/%Y} 12:00:00 AM"),
    "X12 D8 dates (YYYYMMDD)": _dates(lambda d: f"{d:%Y%m%d}"),
    "two-digit years and dashes": _dates(lambda d: f"{d.month}-{d.day}-{d:%y}"),
    "pandas floats for NPIs and POS, '$ ' charges": _pandas_floats,
    "SQL NULL for every empty cell": _null_for_empty,
    "codes separated by spaces and pipes": lambda row: {
        **row, "modifiers": row["modifiers"].replace(";", " ").replace(",", " "),
        "dx_codes": row["dx_codes"].replace(";", "|").replace(",", "|")},
    "modifiers joined by hyphens (GP-59), diagnoses by colons": lambda row: {
        **row, "modifiers": row["modifiers"].replace(";", "-").replace(",", "-"),
        "dx_codes": row["dx_codes"].replace(";", ":").replace(",", ":")},
    "lower-case payer ids": lambda row: {**row, "payer_id": row["payer_id"].lower()},
    "a spreadsheet's text apostrophe before codes and ids ('02)": lambda row: {
        **row, **{c: "'" + row[c] for c in ("cpt", "pos", "rendering_npi", "referring_npi", "dx_codes", "service_date")
                  if row[c]}},
    "pandas floats in modifiers, N/A among the diagnoses": lambda row: {
        **row, "modifiers": ";".join(f"{m}.0" if m.isdigit() else m for m in row["modifiers"].split(";")),
        "dx_codes": row["dx_codes"] + ";N/A" if row["dx_codes"] else row["dx_codes"]},
}


@pytest.mark.parametrize("variant", list(CELL_VARIANTS))
def test_cells_written_another_way_give_the_same_findings(
    variant: str, canonical: list[tuple[str, str]], tmp_path: Path
) -> None:
    header, rows = _read_sample()
    changed = [CELL_VARIANTS[variant](dict(row)) for row in rows]
    assert changed != rows  # the variant rewrites cells of the sample
    export = _write(tmp_path / "export.csv", header, changed)
    assert _scrub(export, tmp_path / "out") == canonical


@pytest.mark.parametrize("spelling", [str.upper, lambda h: h.replace("_", " ").title()])
def test_contract_headers_in_another_case_are_read(
    spelling: Callable[[str], str], canonical: list[tuple[str, str]], tmp_path: Path
) -> None:
    header, rows = _read_sample()
    renamed = [spelling(h) for h in header]
    export = _write(tmp_path / "export.csv", renamed, [{spelling(k): v for k, v in r.items()} for r in rows])
    assert _scrub(export, tmp_path / "out") == canonical


def test_a_header_two_columns_could_be_is_refused_naming_both(tmp_path: Path) -> None:
    header, rows = _read_sample()
    header_without = [h for h in header if h != "claim_id"]
    export = _write(tmp_path / "export.csv", [*header_without, "CLAIM ID", "Claim-Id"], rows)
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE)
    assert result.returncode == 2
    assert "'CLAIM ID' and 'Claim-Id' could each be claim_id" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_row_shifted_by_a_comma_is_reported_even_when_its_extra_cell_is_empty(tmp_path: Path) -> None:
    """An unquoted comma in curriculum_id pushes the row's cells right; the last, empty column spills
    into an extra empty cell. The row is reported, never read with the curriculum's year as charge."""
    header, rows = _read_sample()
    line = {**rows[0], "claim_id": "SHIFT-1", "curriculum_id": "ADA-DSMES", "charge": ""}
    export = _write(tmp_path / "export.csv", [*header, "Notes"], [line])
    text = export.read_text(encoding="utf-8").replace("ADA-DSMES", "ADA-DSMES, 2024")
    export.write_text(text, encoding="utf-8")
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--workers", "1")
    assert result.returncode == 1
    messages = [f["message"] for f in read_findings(tmp_path / "out") if f["rule_id"] == "INPUT_UNREADABLE_VALUE"]
    assert any("cells but the header has" in m for m in messages), messages


def test_a_repeated_header_in_another_case_is_refused(tmp_path: Path) -> None:
    header, rows = _read_sample()
    upper = [h.upper() for h in header]
    export = _write(tmp_path / "export.csv", [*upper, "CLAIM_ID"], [{**{h.upper(): v for h, v in r.items()}} for r in rows])
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE)
    assert result.returncode == 2
    assert "column 'CLAIM_ID' appears twice in the header" in result.stderr


def test_an_exact_header_beside_one_in_another_case_is_refused(tmp_path: Path) -> None:
    """`units` (3) and `UNITS` (9): either could be the units billed, so neither is guessed."""
    header, rows = _read_sample()
    export = _write(tmp_path / "export.csv", [*header, "UNITS"], [{**r, "UNITS": "9"} for r in rows])
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE)
    assert result.returncode == 2
    assert "columns 'units' and 'UNITS' could each be units" in result.stderr
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('units: "units"\n', encoding="utf-8")  # the way to pick one: map it
    assert _scrub(export, tmp_path / "mapped", "--mapping", str(mapping))


NAME = "Doe, Jane PHINAME"  # a patient's name with a comma, written without quotes


@pytest.mark.parametrize("before", ["cpt", "claim_id"])
def test_a_name_shifted_into_another_column_is_never_shown(before: str, tmp_path: Path) -> None:
    """The name's comma splits it in two cells: everything after it moves one column right, so the
    name's second half lands in cpt (or claim_id). The line is reported as damaged, and only that:
    no finding reads its cells, and no message, report or CI file shows them."""
    header, rows = _read_sample()
    at = header.index(before)
    shifted = [*header[:at], "Patient Name", *header[at:]]
    export = _write(tmp_path / "export.csv", shifted, [{**r, "Patient Name": NAME} for r in rows[:5]])
    export.write_text(export.read_text(encoding="utf-8").replace(f'"{NAME}"', NAME), encoding="utf-8")
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--workers", "1")
    assert result.returncode == 1
    findings = read_findings(tmp_path / "out")
    assert len(findings) == 5 and {f["rule_id"] for f in findings} == {"INPUT_UNREADABLE_VALUE"}
    assert all(f["claim_id"] is None and "cells but the header has" in f["message"] for f in findings)
    for name in ("findings.jsonl", "junit.xml", "report.html", "summary.md", "summary.json"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "PHINAME" not in text.upper(), name
    assert result.stdout.count("PHINAME") == result.stderr.count("PHINAME") == 0
    with (tmp_path / "out" / "annotated.csv").open(encoding="utf-8", newline="") as handle:
        last = [r[header[-1]] for r in csv.DictReader(handle)]
    # Nothing lost: the cell pushed past the last column is kept in it.
    assert last == [f"{r[header[-2]]},{r[header[-1]]}" for r in rows[:5]]


def test_a_stray_windows_1252_byte_leaves_the_utf8_on_its_line_alone(tmp_path: Path) -> None:
    header, rows = _read_sample()
    export = _write(tmp_path / "export.csv", [*header, "Patient Name"],
                    [{**rows[0], "curriculum_id": "ADA-STRAY", "Patient Name": "José Núñez"}])
    export.write_bytes(export.read_bytes().replace(b"ADA-STRAY", b"ADA-\xa7"))  # cp1252 section sign
    _scrub(export, tmp_path / "out")
    with (tmp_path / "out" / "annotated.csv").open(encoding="utf-8", newline="") as handle:
        line = next(csv.DictReader(handle))
    assert (line["curriculum_id"], line["Patient Name"]) == ("ADA-§", "José Núñez")


def test_a_charge_past_64_bit_cents_is_reported_as_written(tmp_path: Path) -> None:
    """An absurd but readable charge is totalled as written: no overflow, no warning on stderr."""
    header, rows = _read_sample()
    export = _write(tmp_path / "export.csv", header, [{**rows[0], "charge": "99999999999999999999"}])
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--workers", "1",
                     "--fail-on", "never")
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert str(10**22) in report and "-9223372036854775808" not in report  # 1e20 dollars, in cents


@pytest.mark.parametrize("column, cell", [("charge", "+$-5"), ("charge", "+-5"), ("service_date", "0000-01-01")])
def test_a_value_shaped_like_its_type_but_not_one_is_unreadable(column: str, cell: str, tmp_path: Path) -> None:
    """Two signs around a dollar sign, or the year 0: reported on its line, not a crash or a date."""
    header, rows = _read_sample()
    export = _write(tmp_path / "export.csv", header, [{**rows[0], column: cell}, rows[1]])
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--workers", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    unreadable = [f for f in read_findings(tmp_path / "out") if f["rule_id"] == "INPUT_UNREADABLE_VALUE"]
    assert [(f["line_no"], f["message"].split(":")[0]) for f in unreadable] == [(1, f"cannot read {column}")]


@pytest.mark.parametrize("column, cell", [
    ("referring_npi", "1" * 1200), ("rendering_taxonomy", "X" * 1200), ("curriculum_id", "A" * 1200),
    ("dx_codes", ";".join(["E11.9"] * 250)), ("group_size", "three"), ("minutes", "an hour"), ("minutes", "-30"), ("units", "two"),
    ("service_date", "2026-13-45"), ("order_date", "yesterday"), ("submission_date", "2026-02-30"),
    ("payer_type", "Tricare"), ("modifiers", "G" * 1200), ("session_id", "S" * 1200), ("line_no", "1a"),
])
def test_an_unreadable_value_adds_no_finding_but_its_own(
    column: str, cell: str, canonical: list[tuple[str, str]], tmp_path: Path
) -> None:
    """A value that cannot be read is reported as such, never taken as empty ("referring_npi is
    empty", "billed with no diagnosis code"): every line's other findings are the ones it has with
    the value left as it was."""
    header, rows = _read_sample()
    export = _write(tmp_path / "export.csv", header, [{**r, column: cell} if r[column] else r for r in rows])
    changed = [r[column] != "" for r in rows]
    assert sum(changed) > 10
    for (status, rule_ids), (_, before), was_changed in zip(_scrub(export, tmp_path / "out"), canonical, changed,
                                                            strict=True):
        ids = set(rule_ids.split(";")) - {""}
        if was_changed:
            assert "INPUT_UNREADABLE_VALUE" in ids and status == "deny"
            assert ids - {"INPUT_UNREADABLE_VALUE"} <= set(before.split(";")), (column, rule_ids, before)


def test_a_repeated_header_row_is_one_damaged_line(tmp_path: Path) -> None:
    """Two exports joined one after another: the second header is a line, reported as what it is."""
    header, rows = _read_sample()
    export = _write(tmp_path / "export.csv", header, [rows[0], dict(zip(header, header)), rows[1]])
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--workers", "1")
    assert result.returncode == 1
    header_line = [f for f in read_findings(tmp_path / "out") if f["claim_id"] is None]
    assert [f["rule_id"] for f in header_line] == ["INPUT_UNREADABLE_VALUE"]
    assert "repeats the header row" in header_line[0]["message"]
    assert len(_verdicts(tmp_path / "out")) == 3


@pytest.mark.parametrize("magic", [b"PK\x03\x04", b"\xd0\xcf\x11\xe0"])
def test_a_workbook_renamed_csv_is_refused_saying_so(magic: bytes, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_bytes(magic + bytes(range(256)))
    result = run_cli("run", str(export), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "export.csv: is an Excel workbook, not CSV text" in result.stderr


def test_a_folder_without_parquet_files_is_refused_saying_so(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "export.csv").write_bytes(SAMPLE.read_bytes())
    result = run_cli("run", str(tmp_path / "exports"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "holds no .parquet file" in result.stderr and "give CSV or JSON Lines exports as files" in result.stderr


def test_mapped_headers_are_found_in_another_case(tmp_path: Path) -> None:
    header, rows = _read_sample()
    export = _write(tmp_path / "export.csv", [h.upper() for h in header], [{k.upper(): v for k, v in r.items()} for r in rows])
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('units: "units"\ncpt: "Cpt"\n', encoding="utf-8")
    assert _scrub(export, tmp_path / "out", "--mapping", str(mapping)) == _scrub(SAMPLE, tmp_path / "sample")


def test_two_digit_years_read_as_strptime_does(tmp_path: Path) -> None:
    """12/31/99 is 1999 (long past filing), not 2099 (a clean future line)."""
    header, rows = _read_sample()
    line = next(r for r in rows if r["payer_type"] == "commercial")
    lines = [{**line, "claim_id": "Y-99", "service_date": "12/31/99", "submission_date": "9/21/26"},
             {**line, "claim_id": "Y-26", "service_date": "9/1/26", "submission_date": "9/3/26"}]
    export = _write(tmp_path / "export.csv", header, lines)
    _scrub(export, tmp_path / "out")
    expired = {f["claim_id"] for f in read_findings(tmp_path / "out") if f["rule_id"] == "TIMELY_FILING_EXPIRED"}
    assert expired == {"Y-99"}


def test_modifier_and_diagnosis_columns_mapped_as_lists(canonical: list[tuple[str, str]], tmp_path: Path) -> None:
    """Exports with a column per code (Modifier 1..4, Diagnosis 1..4) map each list field to its columns."""
    header, rows = _read_sample()
    split_rows = []
    for row in rows:
        mods = [m for m in row["modifiers"].replace(",", ";").split(";") if m]
        dx = [d for d in row["dx_codes"].replace(",", ";").split(";") if d]
        split = {k: v for k, v in row.items() if k not in ("modifiers", "dx_codes")}
        split.update({f"Mod {i + 1}": (mods[i] if i < len(mods) else "") for i in range(4)})
        split.update({f"Dx {i + 1}": (dx[i] if i < len(dx) else "") for i in range(4)})
        split_rows.append(split)
    assert any(r["Mod 2"] for r in split_rows) and any(r["Dx 2"] for r in split_rows)
    columns = [h for h in header if h not in ("modifiers", "dx_codes")] + [f"Mod {i}" for i in range(1, 5)] + \
        [f"Dx {i}" for i in range(1, 5)]
    export = _write(tmp_path / "export.csv", columns, split_rows)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('modifiers: ["Mod 1", "Mod 2", "Mod 3", "Mod 4"]\ndx_codes: ["Dx 1", "Dx 2", "Dx 3", "Dx 4"]\n')
    assert _scrub(export, tmp_path / "out", "--mapping", str(mapping)) == canonical


def test_a_list_of_headers_only_for_list_fields(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('cpt: ["Proc 1", "Proc 2"]\n')
    result = run_cli("run", str(SAMPLE), "--out", str(tmp_path / "out"), "--mapping", str(mapping))
    assert result.returncode == 2
    assert "a list of headers only for modifiers and dx_codes" in result.stderr


def test_placeholder_words_in_text_columns_are_no_value(tmp_path: Path) -> None:
    """"N/A" in prior_auth_number is no authorization number; in a number column it is unreadable."""
    header, rows = _read_sample()
    needs_auth = next(r for r in rows if r["payer_type"] == "medicaid" and r["cpt"] in ("98960", "98961", "98962")
                      and r["prior_auth_number"])
    lines = [{**needs_auth, "claim_id": "NA-1", "prior_auth_number": "N/A"},
             {**needs_auth, "claim_id": "NA-2", "prior_auth_number": "none"},
             {**needs_auth, "claim_id": "NA-3", "charge": "N/A"}]
    export = _write(tmp_path / "export.csv", header, lines)
    _scrub(export, tmp_path / "out")
    rules = {f["claim_id"]: set() for f in read_findings(tmp_path / "out")}
    for f in read_findings(tmp_path / "out"):
        rules[f["claim_id"]].add(f["rule_id"])
    assert "PRIOR_AUTH_MISSING" in rules["NA-1"] and "PRIOR_AUTH_MISSING" in rules["NA-2"]
    assert "INPUT_UNREADABLE_VALUE" in rules["NA-3"] and "PRIOR_AUTH_MISSING" not in rules["NA-3"]


def test_a_payer_profile_applies_whatever_the_case_of_payer_id(tmp_path: Path) -> None:
    header, rows = _read_sample()
    line = {**next(r for r in rows if r["payer_type"] == "commercial"), "service_date": "2026-09-01",
            "submission_date": "2026-09-21"}  # 20 days: within the commercial default, past the profile's 10
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "payers.yaml").write_text("payers:\n  Acme-Health:\n    filing_limit: {days: 10}\n")
    export = _write(tmp_path / "export.csv", header, [{**line, "claim_id": "P-1", "payer_id": "acme-health"},
                                                      {**line, "claim_id": "P-2", "payer_id": "ACME-HEALTH"},
                                                      {**line, "claim_id": "P-3", "payer_id": "OTHER"}])
    _scrub(export, tmp_path / "out", "--rules", str(rules))
    expired = {f["claim_id"] for f in read_findings(tmp_path / "out") if f["rule_id"] == "TIMELY_FILING_EXPIRED"}
    assert expired == {"P-1", "P-2"}


def test_one_payer_profiled_twice_in_another_case_is_a_rules_problem(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "payers.yaml").write_text("payers:\n  acme-health: {filing_limit: {days: 30}}\n"
                                       "  Acme-Health: {filing_limit: {days: 60}}\n")
    result = run_cli("rules", "check", str(rules))
    assert result.returncode == 2
    assert "payers.yaml:3:3: error: payer Acme-Health is the same payer as acme-health" in result.stderr


def test_lines_with_unreadable_dates_are_not_totalled_as_one_day(tmp_path: Path) -> None:
    """Two therapy lines of one patient on different, unreadable dates are no day of 2 x 15 minutes."""
    header, rows = _read_sample()
    pt = next(r for r in rows if r["payer_type"] == "medicare" and r["cpt"] == "97110" and r["minutes"] == "15"
              and r["units"] == "1")
    lines = [{**pt, "claim_id": "D-1", "service_date": "31/02/2026", "minutes": "10", "units": "1"},
             {**pt, "claim_id": "D-2", "service_date": "32/03/2026", "minutes": "10", "units": "1"}]
    export = _write(tmp_path / "export.csv", header, lines)
    _scrub(export, tmp_path / "out")
    found = {(f["claim_id"], f["rule_id"]) for f in read_findings(tmp_path / "out")}
    assert ("D-1", "INPUT_UNREADABLE_VALUE") in found and ("D-2", "INPUT_UNREADABLE_VALUE") in found
    assert not {rule for _, rule in found} & {"PT_8MIN_UNITS", "PT_UNITS_EXCEED_TIME", "DUPLICATE_LINE"}
