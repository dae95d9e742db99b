"""Input and output formats (claims contract §1, §2): the same lines in any format, the same run.

Each test writes an export by hand, runs the real entry point, and compares what it reads back
with the answer known from the lines. Every export carries a PHI sentinel that must never be
printed.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_findings, run_cli, write_csv

from scrubber.loader import BUNDLED_RULES

SENTINEL = "PHI-SENTINEL-123"
RUN_DATE = "2026-09-30"
SCRUB_COLUMNS = ["scrub_status", "scrub_causes", "scrub_rule_ids", "scrub_carcs", "scrub_messages"]

# rule id -> (cause, severity, condition as YAML flow text, message)
TEST_RULES = {
    "TST_UNITS_OVER_FOUR": (
        "time_units",
        "deny",
        "{field: units, op: gt, value: 4}",
        "{units} units billed",
    ),
    "TST_CURRICULUM_MISSING": (
        "documentation",
        "at-risk",
        "{field: curriculum_id, op: missing}",
        "{cpt} has no curriculum",
    ),
    "TST_CURRICULUM_CAFE": (
        "documentation",
        "at-risk",
        '{field: curriculum_id, op: eq, value: "CAFÉ-1"}',
        "curriculum {curriculum_id}",
    ),
    "TST_SERVICE_BEFORE_2026": (
        "timely_filing",
        "at-risk",
        "{field: service_date, op: lt, value: 2026-01-01}",
        "served {service_date}",
    ),
    "TST_CHARGE_OVER_100": (
        "documentation",
        "at-risk",
        "{field: charge, op: gt, value: 100}",
        "charge {charge}",
    ),
    "TST_INPUT_UNREADABLE": (
        "invalid_input",
        "deny",
        "{field: unreadable_values, op: exists}",
        "cannot read: {unreadable_values}",
    ),
}
RULE_TEMPLATE = """\
id: {rule_id}
name: probe-for-format-tests
summary: A rule written by the format tests.
cause: {cause}
severity: {severity}
carc: "16"
when: {when}
message: "{message}"
fix: Correct the line.
sources:
  - {{title: "tests/test_formats.py"}}
examples:
  fires:
    - {{title: placeholder, line: {{}}}}
  passes:
    - {{title: placeholder, line: {{}}}}
"""

# Column order of every export: extra columns first, in the middle and last.
COLUMNS = [
    "clinic",
    "claim_id",
    "line_no",
    "patient_id",
    "payer_type",
    "service_date",
    "cpt",
    "units",
    "minutes",
    "rendering_npi",
    "zz_note",
    "curriculum_id",
    "referring_npi",
    "charge",
    "last_extra",
]
INT_COLUMNS = ("line_no", "units", "minutes")


def _line(n: int, **changes: Any) -> dict[str, Any]:
    base = {
        "clinic": f"Clínica {n}",
        "claim_id": f"CLM-{n}",
        "line_no": 1,
        "patient_id": f"{SENTINEL}-{n}",
        "payer_type": "commercial",
        "service_date": "2026-09-01",
        "cpt": "98960",
        "units": 1,
        "minutes": 30,
        "rendering_npi": "1234567893",
        "zz_note": "007",
        "curriculum_id": "ADA-DSMES-2024",
        "referring_npi": "1743829560",
        "charge": 45.5,
        "last_extra": "a  b",
    }
    return {**base, **changes}


# Typed values that read back as the same text in every format (no nulls in integer columns).
LINES = [
    _line(1),
    _line(2, units=5, charge=120.25),
    _line(3, curriculum_id=None, referring_npi=None, zz_note=None),
    _line(4, line_no=2, units=6, curriculum_id=None, charge=7.5, service_date="2025-12-31"),
    _line(5, curriculum_id="CAFÉ-1", clinic="Zürich ✓", last_extra=None),
]
EXPECTED_STATUS = ["clean", "deny", "at-risk", "deny", "at-risk"]


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("formats") / "rules"
    folder.mkdir()
    for name in ("baseline_line.yaml", "code_sets.yaml", "payers.yaml"):
        shutil.copy(BUNDLED_RULES / name, folder / name)
    shutil.copytree(BUNDLED_RULES / "tables", folder / "tables")
    for rule_id, (cause, severity, when, message) in TEST_RULES.items():
        text = RULE_TEMPLATE.format(
            rule_id=rule_id, cause=cause, severity=severity, when=when, message=message
        )
        (folder / f"{rule_id}.yaml").write_text(text, encoding="utf-8")
    return folder


def scrub(rules_dir: Path, *args: str | Path) -> Any:
    result = run_cli(
        "run",
        *map(str, args),
        "--rules",
        str(rules_dir),
        "--no-bundled-rules",
        "--run-date",
        RUN_DATE,
        "--fail-on",
        "never",
    )
    assert SENTINEL not in result.stdout and SENTINEL not in result.stderr, "PHI printed"
    assert result.returncode == 0, result.stderr
    return result


def annotated_rows(out: Path) -> list[list[str]]:
    with (out / "annotated.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


# -- writers ---------------------------------------------------------------------------------------
def write_text_csv(path: Path, lines: list[dict[str, Any]]) -> Path:
    return write_csv(
        path, [{k: as_text(v) for k, v in row.items()} for row in lines], columns=COLUMNS
    )


def write_csv_gz(path: Path, lines: list[dict[str, Any]]) -> Path:
    plain = write_text_csv(path.with_suffix(""), lines)
    path.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    return path


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(
            json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False) + "\n" for row in lines
        ),
        encoding="utf-8",
    )
    return path


def write_parquet(path: Path, lines: list[dict[str, Any]]) -> Path:
    types = {c: pa.int64() for c in INT_COLUMNS} | {
        "charge": pa.float64(),
        "service_date": pa.date32(),
    }
    arrays = []
    for c in COLUMNS:
        values = [row[c] for row in lines]
        if c == "service_date":
            values = [dt.date.fromisoformat(v) for v in values]
        arrays.append(pa.array(values, type=types.get(c, pa.string())))
    pq.write_table(pa.Table.from_arrays(arrays, names=COLUMNS), path)
    return path


WRITERS = {
    "export.csv": write_text_csv,
    "export.csv.gz": write_csv_gz,
    "export.parquet": write_parquet,
    "export.jsonl": write_jsonl,
}


@pytest.fixture(scope="module")
def runs(rules_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same lines scrubbed from each format: file name -> output folder."""
    tmp = tmp_path_factory.mktemp("same-lines")
    outs = {}
    for name, writer in WRITERS.items():
        export = writer(tmp / name, LINES)
        out = tmp / f"out-{name}"
        scrub(rules_dir, export, "--out", out)
        outs[name] = out
    return outs


def test_csv_csv_gz_parquet_and_jsonl_give_identical_findings_and_annotated_rows(
    runs: dict[str, Path],
) -> None:
    reference = runs["export.csv"]
    findings = read_findings(reference)
    rows = annotated_rows(reference)
    assert rows[0] == COLUMNS + SCRUB_COLUMNS
    assert [r[len(COLUMNS)] for r in rows[1:]] == EXPECTED_STATUS
    assert [(f["claim_id"], f["rule_id"]) for f in findings] == [
        ("CLM-2", "TST_CHARGE_OVER_100"),
        ("CLM-2", "TST_UNITS_OVER_FOUR"),
        ("CLM-3", "TST_CURRICULUM_MISSING"),
        ("CLM-4", "TST_CURRICULUM_MISSING"),
        ("CLM-4", "TST_SERVICE_BEFORE_2026"),
        ("CLM-4", "TST_UNITS_OVER_FOUR"),
        ("CLM-5", "TST_CURRICULUM_CAFE"),
    ]
    for name, out in runs.items():
        assert read_findings(out) == findings, name
        assert annotated_rows(out) == rows, name


def test_input_cells_are_carried_through_untouched_in_their_order(runs: dict[str, Path]) -> None:
    rows = annotated_rows(runs["export.csv"])
    expected = [[as_text(line[c]) for c in COLUMNS] for line in LINES]
    assert [r[: len(COLUMNS)] for r in rows[1:]] == expected  # "007", "a  b", "Zürich ✓" as written


def test_mapping_renames_export_headers_onto_canonical_names(
    rules_dir: Path, runs: dict[str, Path], tmp_path: Path
) -> None:
    renamed = {
        "claim_id": "Claim Number",
        "line_no": "Line",
        "patient_id": "Member ID",
        "payer_type": "Payer Class",
        "service_date": "DOS",
        "cpt": "Procedure",
        "units": "Qty",
        "rendering_npi": "Rendering Provider NPI",
        "curriculum_id": "Curriculum",
        "charge": "Billed $",
    }
    headers = [renamed.get(c, c) for c in COLUMNS]
    export = write_csv(
        tmp_path / "renamed.csv",
        [{renamed.get(k, k): as_text(v) for k, v in row.items()} for row in LINES],
        columns=headers,
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "".join(f'{canon}: "{header}"\n' for canon, header in renamed.items()), encoding="utf-8"
    )
    out = tmp_path / "out"
    scrub(rules_dir, export, "--out", out, "--mapping", mapping)
    assert read_findings(out) == read_findings(runs["export.csv"])
    rows = annotated_rows(out)
    assert rows[0] == headers + SCRUB_COLUMNS  # the export's own headers are kept
    assert rows[1:] == annotated_rows(runs["export.csv"])[1:]


def test_bom_cp1252_us_dates_and_blank_lines_in_csv(rules_dir: Path, tmp_path: Path) -> None:
    header = (
        "claim_id,line_no,patient_id,payer_type,service_date,cpt,units,rendering_npi,curriculum_id,city\r\n"
    )
    base = f"1,{SENTINEL},commercial,{{date}},98960,1,1234567893,{{curriculum}},{{city}}\r\n"
    bom = tmp_path / "bom.csv"
    bom.write_bytes(
        b"\xef\xbb\xbf"
        + (
            header
            + "\r\n"
            + "B1,"
            + base.format(date="12/31/2025", curriculum="ADA", city="Köln")
            + "\r\n\r\n"
            + "B2,"
            + base.format(date="1/2/2026", curriculum="ADA", city="Lyon")
            + "B3,"
            + base.format(date="02/30/2026", curriculum="ADA", city="Oslo")
            + "\r\n"
        ).encode("utf-8")
    )
    cp1252 = tmp_path / "cp1252.csv"
    cp1252.write_bytes(
        (
            header
            + "W1,"
            + base.format(date="2026-09-01", curriculum="CAFÉ-1", city="Montr\u00e9al\u2019s")
            + "W2,"
            + base.format(date="09/01/2026", curriculum="CAFE-1", city="Málaga")
        ).encode("cp1252")
    )
    out = tmp_path / "out"
    result = scrub(rules_dir, bom, cp1252, "--out", out)
    assert "5 lines" in result.stdout
    rows = annotated_rows(out)
    assert rows[0][0] == "claim_id"  # the byte-order mark is not part of the first header
    by_claim = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert list(by_claim) == ["B1", "B2", "B3", "W1", "W2"]  # blank lines are not claim lines
    assert (
        by_claim["B1"]["scrub_rule_ids"] == "TST_SERVICE_BEFORE_2026"
    )  # 12/31/2025 read as a date
    assert by_claim["B2"]["scrub_status"] == "clean"  # 1/2/2026 is January 2nd
    assert by_claim["B3"]["scrub_causes"] == "invalid_input"  # February 30th does not exist
    assert "service_date" in by_claim["B3"]["scrub_messages"]
    assert by_claim["W1"]["scrub_rule_ids"] == "TST_CURRICULUM_CAFE"  # cp1252 É decoded
    assert by_claim["W1"]["city"] == "Montr\u00e9al\u2019s" and by_claim["B1"]["city"] == "Köln"
    assert by_claim["W2"]["scrub_status"] == "clean"
    assert by_claim["B1"]["service_date"] == "12/31/2025"  # the cell is kept as written
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [i["lines"] for i in summary["inputs"]] == [3, 2]


def test_format_parquet_writes_annotated_parquet_with_every_line(
    rules_dir: Path, tmp_path: Path
) -> None:
    n = 1500
    lines = [_line(i, units=(i % 7) + 1, charge=float(i % 50)) for i in range(n)]
    export = write_text_csv(tmp_path / "big.csv", lines)
    out = tmp_path / "out"
    scrub(rules_dir, export, "--out", out, "--format", "parquet")
    assert sorted(p.name for p in out.iterdir()) == [
        "annotated.parquet",
        "findings.jsonl",
        "junit.xml",
        "report.html",
        "summary.json",
        "summary.md",
    ]
    table = pq.read_table(out / "annotated.parquet")
    assert table.column_names == COLUMNS + SCRUB_COLUMNS
    assert table.num_rows == n
    data = table.to_pydict()
    assert data["claim_id"] == [f"CLM-{i}" for i in range(n)]
    assert data["scrub_status"] == ["deny" if (i % 7) + 1 > 4 else "clean" for i in range(n)]
    assert data["zz_note"] == ["007"] * n
    assert len(read_findings(out)) == sum(1 for i in range(n) if (i % 7) + 1 > 4)


def test_parquet_integer_column_with_a_null_keeps_integer_text(
    rules_dir: Path, tmp_path: Path
) -> None:
    """A nullable int64 column must not come back as 30.0 in the annotated file."""
    lines = [_line(1), _line(2, minutes=None)]
    types = {c: pa.int64() for c in INT_COLUMNS} | {"charge": pa.float64()}
    table = pa.Table.from_arrays(
        [pa.array([r[c] for r in lines], type=types.get(c, pa.string())) for c in COLUMNS],
        names=COLUMNS,
    )
    pq.write_table(table, tmp_path / "nullable.parquet")
    scrub(rules_dir, tmp_path / "nullable.parquet", "--out", tmp_path / "out")
    rows = annotated_rows(tmp_path / "out")
    minutes = rows[0].index("minutes")
    assert [r[minutes] for r in rows[1:]] == ["30", ""]


def test_typed_cells_read_as_the_text_a_csv_would_hold(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """What pandas and JSON exporters write: an NPI column with a gap is float64, diagnoses are a
    list. They read as the CSV text (1234567893, E11.9;I10), in memory and streamed alike."""
    baseline = {k: "" if v is None else str(v) for k, v in baseline.items() if k != "rendering_npi"}
    csv_lines = [{**baseline, "claim_id": f"T-{i}", "rendering_npi": "1234567893", "dx_codes": "E11.9;I10"} for i in range(3)]
    csv_export = write_csv(tmp_path / "export.csv", csv_lines)
    table = pa.table({
        **{k: pa.array([v] * 3, pa.string()) for k, v in baseline.items() if k != "dx_codes"},
        "claim_id": pa.array([f"T-{i}" for i in range(3)]),
        "rendering_npi": pa.array([1234567893.0] * 3, pa.float64()),
        "dx_codes": pa.array([["E11.9", "I10"]] * 3, pa.list_(pa.string())),
    }).select(list(csv_lines[0]))
    pq.write_table(table, tmp_path / "export.parquet")
    (tmp_path / "export.jsonl").write_text("".join(
        json.dumps({**line, "rendering_npi": 1234567893.0, "dx_codes": ["E11.9", "I10"], "extra": {"a": 1}}) + "\n"
        for line in csv_lines), encoding="utf-8")
    expected = run_cli("run", str(csv_export), "--out", str(tmp_path / "csv"), "--run-date", RUN_DATE)
    for name in ("export.parquet", "export.jsonl"):
        for extra in ([], ["--chunk-lines", "10"]):
            out = tmp_path / f"{name}{len(extra)}"
            done = run_cli("run", str(tmp_path / name), "--out", str(out), "--run-date", RUN_DATE, *extra)
            assert done.returncode == expected.returncode, done.stderr
            assert read_findings(out) == read_findings(tmp_path / "csv"), name
            rows = annotated_rows(out)
            assert [r[rows[0].index("rendering_npi")] for r in rows[1:]] == ["1234567893"] * 3
            assert [r[rows[0].index("dx_codes")] for r in rows[1:]] == ["E11.9;I10"] * 3


def test_jsonl_columns_keep_their_order_when_the_first_record_lacks_one(tmp_path: Path) -> None:
    lines = [{c: row[c] for c in COLUMNS} for row in LINES]
    del lines[0]["curriculum_id"]  # a key the exporter drops when it is empty
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--fail-on", "never")
    assert annotated_rows(tmp_path / "out")[0][: len(COLUMNS)] == COLUMNS


def test_an_empty_jsonl_file_is_a_day_without_claims(tmp_path: Path) -> None:
    # JSON Lines has no header: an empty file is how an exporter says "no claims today", and one quiet
    # clinic must not stop the batch (a CSV says it with a header-only file).
    empty = tmp_path / "quiet-clinic.jsonl"
    empty.write_text("\n", encoding="utf-8")
    export = tmp_path / "export.csv"
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({c: row[c] for c in COLUMNS} for row in LINES)
    done = run_cli("run", str(empty), str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    assert len(annotated_rows(tmp_path / "out")) == len(LINES) + 1  # the header row, then every line
    inputs = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))["inputs"]
    assert [(i["file"], i["lines"]) for i in inputs] == [("quiet-clinic.jsonl", 0), ("export.csv", len(LINES))]


def test_header_cells_keep_their_spaces_in_the_output(tmp_path: Path) -> None:
    # The contract carries columns through untouched: " claim_id " is read as claim_id, and written
    # back as " claim_id ", like an extra " Notes " column.
    spaced = [f" {c} " if c in ("claim_id", "payer_type") else c for c in COLUMNS] + [" Notes "]
    for name, header in (("plain", [*COLUMNS, "Notes"]), ("spaced", spaced)):
        export = tmp_path / f"{name}.csv"
        with export.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([*(row[c] for c in COLUMNS), "seen"] for row in LINES)
        done = run_cli("run", str(export), "--out", str(tmp_path / name), "--run-date", RUN_DATE, "--fail-on", "never")
        assert done.returncode == 0, done.stderr
    plain, spaced_rows = annotated_rows(tmp_path / "plain"), annotated_rows(tmp_path / "spaced")
    assert spaced_rows[0][: len(spaced)] == spaced
    assert [r[len(spaced):] for r in spaced_rows[1:]] == [r[len(spaced):] for r in plain[1:]]  # the same findings


def test_jsonl_with_epoch_millisecond_dates(tmp_path: Path) -> None:
    """pandas (before 3) writes dates in to_json as epoch milliseconds by default: such an export
    gets the findings of the same lines as CSV."""
    sample = Path(__file__).resolve().parents[1] / "samples" / "clinic_export.csv"
    with sample.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    epoch = dt.date(1970, 1, 1)
    for line in lines:
        for column in ("service_date", "submission_date", "order_date"):
            day = line[column]
            line[column] = (dt.date.fromisoformat(day) - epoch).days * 86_400_000 if day else None
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    expected = run_cli("run", str(sample), "--out", str(tmp_path / "csv"), "--run-date", RUN_DATE)
    done = run_cli("run", str(export), "--out", str(tmp_path / "jsonl"), "--run-date", RUN_DATE)
    assert done.returncode == expected.returncode, done.stderr
    assert read_findings(tmp_path / "jsonl") == read_findings(tmp_path / "csv")


SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "clinic_export.csv"


def _sample_frame() -> pd.DataFrame:
    return pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)


def _same_findings_as_csv(export: Path, tmp_path: Path, frame: pd.DataFrame) -> list[list[str]]:
    """Scrub `export` and the same lines as CSV; the findings must match. Returns the export's annotated rows."""
    csv_export = tmp_path / "same.csv"
    frame.to_csv(csv_export, index=False)
    for name, path in (("csv", csv_export), ("export", export)):
        done = run_cli("run", str(path), "--out", str(tmp_path / name), "--run-date", RUN_DATE, "--fail-on", "never")
        assert done.returncode == 0, done.stderr
    assert read_findings(tmp_path / "export") == read_findings(tmp_path / "csv")
    return annotated_rows(tmp_path / "export")


def test_a_hive_partitioned_dataset_keeps_its_partition_columns(tmp_path: Path) -> None:
    """payer_type=medicare/ folders, as pandas and Spark write them: the key is the lines' column."""
    frame = _sample_frame()
    frame.to_parquet(tmp_path / "dataset", partition_cols=["payer_type"], index=False)
    (tmp_path / "dataset" / "README.txt").write_text("monthly export\n", encoding="utf-8")  # not data
    (tmp_path / "dataset" / "_SUCCESS").write_text("", encoding="utf-8")
    # Arrow reads the partitions in folder order: compare with the lines in that order.
    ordered = pd.concat([frame[frame["payer_type"] == p] for p in sorted(frame["payer_type"].unique())])
    ordered = ordered[[c for c in frame.columns if c != "payer_type"] + ["payer_type"]]
    rows = _same_findings_as_csv(tmp_path / "dataset", tmp_path, ordered)
    assert rows[0][: len(frame.columns)] == list(ordered.columns)


def test_a_single_parquet_file_in_a_key_named_folder_gains_no_column(tmp_path: Path) -> None:
    """Only a dataset folder's own subfolders are partition keys: a file given alone keeps its columns."""
    frame = _sample_frame()
    (tmp_path / "month=2026-09").mkdir()
    frame.to_parquet(tmp_path / "month=2026-09" / "export.parquet", index=False)
    rows = _same_findings_as_csv(tmp_path / "month=2026-09" / "export.parquet", tmp_path, frame)
    assert rows[0][: -len(SCRUB_COLUMNS)] == list(frame.columns)


def test_a_column_only_later_files_of_a_dataset_have_is_read(tmp_path: Path) -> None:
    frame = _sample_frame()
    (tmp_path / "dataset").mkdir()
    first, rest = frame.iloc[:100], frame.iloc[100:]
    first.drop(columns=["prior_auth_number"]).to_parquet(tmp_path / "dataset" / "part-0.parquet", index=False)
    rest.assign(batch_note="late").to_parquet(tmp_path / "dataset" / "part-1.parquet")  # with pandas' index column
    expected = pd.concat([first.assign(prior_auth_number=None), rest.assign(batch_note="late")])
    rows = _same_findings_as_csv(tmp_path / "dataset", tmp_path, expected[[*frame.columns, "batch_note"]])
    assert "prior_auth_number" in rows[0] and "batch_note" in rows[0] and "__index_level_0__" not in rows[0]


def test_a_folder_whose_parquet_is_only_under_temporary_is_refused(tmp_path: Path) -> None:
    """A Spark job still writing (or failed) leaves its files in _temporary/: not an export of no claims."""
    (tmp_path / "dataset" / "_temporary" / "0").mkdir(parents=True)
    _sample_frame().to_parquet(tmp_path / "dataset" / "_temporary" / "0" / "part-0.parquet", index=False)
    done = run_cli("run", str(tmp_path / "dataset"), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE)
    assert done.returncode == 2 and "holds no .parquet file" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_jsonl_integers_past_float_precision_keep_their_digits(tmp_path: Path) -> None:
    """A 19-digit claim id that some line lacks must not become a float (2.026e+18)."""
    lines = _sample_frame().head(5).to_dict("records")
    for i, line in enumerate(lines):
        line["claim_id"] = 2026000000000000000 + i
    del lines[2]["claim_id"]
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--fail-on", "never")
    rows = annotated_rows(tmp_path / "out")
    ids = [r[rows[0].index("claim_id")] for r in rows[1:]]
    assert ids == ["2026000000000000000", "2026000000000000001", "", "2026000000000000003", "2026000000000000004"]


def test_pandas_datetime_dates_in_parquet_read_and_show_as_dates(tmp_path: Path) -> None:
    """pandas stores dates as timestamps: at midnight each is the date, as the CSV export holds it."""
    frame = _sample_frame()
    typed = frame.copy()
    for column in ("service_date", "submission_date", "order_date"):
        typed[column] = pd.to_datetime(typed[column].replace("", None))
    typed.to_parquet(tmp_path / "export.parquet", index=False)
    rows = _same_findings_as_csv(tmp_path / "export.parquet", tmp_path, frame)
    assert rows == annotated_rows(tmp_path / "csv")


def test_a_dataset_whose_files_disagree_on_a_column_type_is_refused_naming_them(tmp_path: Path) -> None:
    frame = _sample_frame()
    (tmp_path / "dataset").mkdir()
    frame.iloc[:100].astype({"units": int}).to_parquet(tmp_path / "dataset" / "a.parquet", index=False)
    frame.iloc[100:].assign(patient_id=SENTINEL).to_parquet(tmp_path / "dataset" / "b.parquet", index=False)
    done = run_cli("run", str(tmp_path / "dataset"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "b.parquet: a column's type differs" in done.stderr and "Field units" in done.stderr
    assert SENTINEL not in done.stderr and not (tmp_path / "out").exists()
