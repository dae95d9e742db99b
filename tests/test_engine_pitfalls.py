"""Engine pitfalls (engine-notes §4), each shown to give the RIGHT answer through the scrubber.

Every test builds a small rules folder (the bundled baseline, code sets, payer settings and
tables, plus test rules written here), scrubs lines through the same path as a real run, and
compares the lines each rule fired on with the answer worked out by hand in the test. A few
"control" tests drive the raw C engine with the same inputs to show the pitfall is real, so the
scrubber tests cannot pass for want of a trigger.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import durable_rules_engine as dre
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import read_findings, run_cli

from scrubber.errors import RuleConfigError
from scrubber.loader import BUNDLED_RULES, RulePack, load_pack
from scrubber.selftest import scrub_lines

DATA_FILES = ("baseline_line.yaml", "code_sets.yaml", "payers.yaml")

RULE_TEMPLATE = """\
id: {rule_id}
name: probe-condition
summary: A rule written by the engine-pitfall tests.
cause: {cause}
severity: {severity}
carc: "16"
message: "{rule_id} fired"
fix: Nothing to fix; this is a test rule.
sources:
  - {{title: "tests/test_engine_pitfalls.py"}}
examples:
  fires:
    - {{title: placeholder, line: {{}}}}
  passes:
    - {{title: placeholder, line: {{}}}}
when:
{when}"""
WHEN_BODY_LINE = 17  # the first line of the condition in a file made from RULE_TEMPLATE


def when_yaml(cond: dict[str, Any] | str) -> str:
    """A condition as the indented block under `when:`."""
    if isinstance(cond, str):
        return cond
    text = yaml.safe_dump(
        cond, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1 << 20
    )
    return textwrap.indent(text, "  ")


def rules_folder(
    root: Path, rules: dict[str, dict[str, Any] | str], severity: str = "deny"
) -> Path:
    """A rules folder: the bundled data files plus one file per test rule."""
    folder = root / "rules"
    folder.mkdir(parents=True)
    for name in DATA_FILES:
        shutil.copy(BUNDLED_RULES / name, folder / name)
    shutil.copytree(BUNDLED_RULES / "tables", folder / "tables")
    for rule_id, cond in rules.items():
        text = RULE_TEMPLATE.format(
            rule_id=rule_id, cause="invalid_code", severity=severity, when=when_yaml(cond)
        )
        (folder / f"{rule_id}.yaml").write_text(text, encoding="utf-8")
    return folder


def findings_by_rule(pack: RulePack, lines: list[dict[str, Any]]) -> dict[str, list[int]]:
    """rule id -> rows (0-based) it fired on; fails if a rule reported one line twice."""
    findings = scrub_lines(lines, pack).findings
    pairs = Counter(zip(findings["rule_id"], findings["row"], strict=True))
    doubled = sorted(p for p, n in pairs.items() if n > 1)
    assert doubled == [], f"a rule reported the same line more than once: {doubled[:5]}"
    out: dict[str, list[int]] = {r.id: [] for r in pack.rules}
    for rule_id, row in sorted(pairs, key=lambda p: (p[0], p[1])):
        out[rule_id].append(int(row))
    return out


def load(tmp_path: Path, rules: dict[str, dict[str, Any] | str]) -> RulePack:
    return load_pack([rules_folder(tmp_path, rules)])


def raw_engine_fired(rules: dict[str, Any], facts: list[str]) -> list[dict[str, Any]]:
    """Drive the C engine directly, as a naive integration would; return every action's messages."""
    handle = dre.create_ruleset(f"control{id(rules)}", json.dumps(rules))
    code, state = dre.assert_facts(handle, "[" + ",".join(facts) + "]")
    assert code == 0
    out = []
    result = dre.start_action_for_state(handle, state)
    messages = result[1] if result else None
    while messages:
        out.append(json.loads(messages))
        messages = dre.complete_and_start_action(handle, state)
    return out


# -- controls: the raw engine really has these pitfalls --------------------------------------------
def test_control_the_raw_engine_has_pitfalls_p1_p7_p12() -> None:
    guard = {"k": "c"}
    truncating = {"r": {"all": [{"m": {"$and": [guard, {"$gt": {"x": 0}}]}}]}}
    facts = [
        f'{{"k":"c","id":{i},"x":{v}}}' for i, v in enumerate(["1", "2", "3", "1e-05", "4", "5"])
    ]
    ids = sorted(m["r"]["m"]["id"] for m in raw_engine_fired(truncating, facts))
    assert ids == [0, 1, 2]  # P1: ids 4 and 5 (x > 0) were never evaluated

    double = {
        "r": {"all": [{"m": {"$and": [guard, {"$or": [{"$gt": {"x": 10}}, {"$gt": {"x": 20}}]}]}}]}
    }
    assert len(raw_engine_fired(double, ['{"k":"c","id":0,"x":30}'])) == 2  # P12

    ref = {"r": {"all": [{"m": {"$and": [guard, {"$gt": {"paid": {"$m": "billed"}}}]}}]}}
    assert len(raw_engine_fired(ref, ['{"k":"c","id":0,"paid":5}'])) == 1  # P7: billed is missing


# -- P1 / P15: numbers the engine cannot parse do not truncate a batch -----------------------------
SPECIAL_CHARGES = {
    3: "1e-05",
    700: "1e16",
    999: "1E+16",
    1000: "-1e-05",
    1001: "1e300",
    1500: "5e-324",
    1501: "NaN",
    1502: "nan",
    1800: "inf",
    1801: "",
    2000: "0.00000001",
    2001: "123456789012345678901234567890",
    2400: "-2.5e-7",
    2599: "1.5e-07",
}


def test_p1_p15_exponents_huge_small_and_nan_charges_do_not_truncate_a_batch(
    tmp_path: Path,
) -> None:
    pack = load(
        tmp_path,
        {
            "TST_CHARGE_HIGH": {"field": "charge", "op": "gt", "value": 100},
            "TST_CHARGE_TINY": {"field": "charge", "op": "lt", "value": 0.001},
            "TST_CHARGE_NOT_HIGH": {"not": {"field": "charge", "op": "gt", "value": 100}},
        },
    )
    n = 2600  # every charge distinct: three engine chunks of up to 1000 facts
    charges = [SPECIAL_CHARGES.get(i, f"{i}.25") for i in range(n)]
    fired = findings_by_rule(
        pack, [{"claim_id": f"C{i}", "charge": c} for i, c in enumerate(charges)]
    )

    unreadable = {1501, 1502, 1800}  # NaN, nan, inf: no number, and no rule reading charge judges the line
    empty = 1801  # missing: `not` makes a comparison on it true
    plain_above = {i for i in range(100, n) if i not in SPECIAL_CHARGES}  # 100.25 > 100
    above = {700, 999, 1001, 2001} | plain_above
    tiny = {3, 1000, 1500, 2000, 2400, 2599}
    assert fired["TST_CHARGE_HIGH"] == sorted(above)
    assert fired["TST_CHARGE_TINY"] == sorted(tiny)
    assert fired["TST_CHARGE_NOT_HIGH"] == sorted(set(range(n)) - above - unreadable)
    assert empty in fired["TST_CHARGE_NOT_HIGH"]
    assert fired["TST_CHARGE_HIGH"][-1] == n - 2  # the last lines of the last chunk were evaluated


def test_p15_rule_constants_written_small_or_large_run_in_the_engine(tmp_path: Path) -> None:
    """`0.00001` and `1.0e+16` are plain YAML numbers; the engine cannot parse exponent forms."""
    pack = load(
        tmp_path,
        {
            "TST_CHARGE_BELOW_TINY": {"field": "charge", "op": "lt", "value": 0.00001},
            "TST_CHARGE_ABOVE_HUGE": {"field": "charge", "op": "gt", "value": 1.0e16},
        },
    )
    lines = [
        {"charge": c}
        for c in ["0.000001", "0.00002", "45.00", "20000000000000000", "10000000000000000"]
    ]
    fired = findings_by_rule(pack, lines)
    assert fired == {"TST_CHARGE_BELOW_TINY": [0], "TST_CHARGE_ABOVE_HUGE": [3]}


def test_p15_an_integer_too_large_for_64_bits_does_not_stop_the_run(tmp_path: Path) -> None:
    """A 20-digit `units` does not fit 64 bits: the line is kept and flagged, the rest scrubbed."""
    pack = load(
        tmp_path,
        {
            "TST_UNITS_HIGH": {"field": "units", "op": "gt", "value": 3},
            "TST_UNREADABLE": {"field": "unreadable_values", "op": "exists"},
        },
    )
    lines = [{"units": u} for u in ["2", "99999999999999999999", "5", "-99999999999999999999", "1"]]
    fired = findings_by_rule(pack, lines)
    assert fired == {"TST_UNITS_HIGH": [2], "TST_UNREADABLE": [1, 3]}


# -- P2: more than 1000 distinct facts; ids are chunk-local ----------------------------------------
def test_p2_thousands_of_distinct_facts_lose_nothing(tmp_path: Path) -> None:
    chosen = [f"C-{i}" for i in (0, 999, 1000, 1001, 1998, 1999, 2000, 40189, 797186)] + [
        f"C-{i}" for i in range(3000, 3051)
    ]
    pack = load(
        tmp_path,
        {
            "TST_CLAIM_ENDS_7": {"field": "claim_id", "op": "matches", "value": r"C-\d*7"},
            # 60 values: over 50, so evaluated as a flag column
            "TST_CLAIM_CHOSEN": {"field": "claim_id", "op": "in", "value": chosen},
        },
    )
    ids = [*range(3100), 40189, 797186]
    lines = [{"claim_id": f"C-{i}", "line_no": 1} for i in ids]
    fired = findings_by_rule(pack, lines)
    assert fired["TST_CLAIM_ENDS_7"] == [row for row, i in enumerate(ids) if i % 10 == 7]
    assert len(fired["TST_CLAIM_ENDS_7"]) == 310  # 7, 17, ..., 3097
    assert fired["TST_CLAIM_CHOSEN"] == [row for row, i in enumerate(ids) if f"C-{i}" in chosen]
    assert len(fired["TST_CLAIM_CHOSEN"]) == 60


def test_projections_too_wide_for_one_int64_key_are_still_told_apart(tmp_path: Path) -> None:
    """Lines are grouped by the values a rule reads, as one mixed-radix integer per line (fields in
    name order). Four later fields of 65,535 values each make the first field's weight 2**64: in
    64 bits it would vanish, and line 65,535 (billing_npi B) would get line 0's answer (A)."""
    later = ["curriculum_id", "prior_auth_number", "referring_taxonomy", "session_id"]  # after billing_npi
    pack = load(tmp_path, {"TST_WIDE": {"all": [{"field": "billing_npi", "op": "eq", "value": "A"},
                                                  *({"field": f, "op": "ne", "value": "none"} for f in later)]}})
    lines = [{"billing_npi": "A" if i == 0 else "B", **{f: f"v{i % 65_535}" for f in later}} for i in range(65_536)]
    assert findings_by_rule(pack, lines)["TST_WIDE"] == [0]


# -- P7: field-vs-field with the other field missing -----------------------------------------------
def test_p7_ref_comparison_with_a_missing_field_is_false_and_its_not_is_true(
    tmp_path: Path,
) -> None:
    pack = load(
        tmp_path,
        {
            "TST_REF_LT": {"field": "group_size", "op": "lt", "ref": "units"},
            "TST_REF_GT": {"field": "group_size", "op": "gt", "ref": "units"},
            "TST_REF_EQ": {"field": "group_size", "op": "eq", "ref": "units"},
            "TST_REF_NE": {"field": "group_size", "op": "ne", "ref": "units"},
            "TST_REF_NOT_LT": {"not": {"field": "group_size", "op": "lt", "ref": "units"}},
        },
    )
    lines = [
        {"group_size": 2, "units": 3},  # 0: lt, ne
        {"group_size": 3, "units": 3},  # 1: eq
        {"group_size": 4, "units": 3},  # 2: gt, ne
        {"group_size": "", "units": 3},  # 3: group_size missing
        {"group_size": 5, "units": ""},  # 4: units missing
        {"group_size": "", "units": ""},  # 5: both missing
    ]
    fired = findings_by_rule(pack, lines)
    assert fired == {
        "TST_REF_LT": [0],
        "TST_REF_GT": [2],
        "TST_REF_EQ": [1],
        "TST_REF_NE": [0, 2],
        "TST_REF_NOT_LT": [1, 2, 3, 4, 5],
    }


# -- P9: mixed types -------------------------------------------------------------------------------
def test_p9_numbers_compare_as_numbers_and_text_only_equals_the_same_text(tmp_path: Path) -> None:
    pack = load(
        tmp_path,
        {
            "TST_UNITS_OVER_99": {"field": "units", "op": "gt", "value": 99},
            "TST_CHARGE_AT_LEAST": {"field": "charge", "op": "ge", "value": 99.5},
            "TST_TEXT_99": {"field": "curriculum_id", "op": "eq", "value": "99"},
            "TST_TEXT_TRUE": {"field": "prior_auth_number", "op": "eq", "value": "true"},
            "TST_TEXT_1_5": {"field": "session_id", "op": "eq", "value": "1.5"},
        },
    )
    columns = ("units", "charge", "curriculum_id", "prior_auth_number", "session_id")
    rows = [
        ("100", "100", "99", "true", "1.5"),
        ("99", "99.50", "099", "1", "1.50"),
        ("099", "99.4", "99.0", "True", "15"),
        ("1000", "1000", " 99 ", "TRUE", "1,5"),
        ("9", "9", "", "", ""),
    ]
    lines = [dict(zip(columns, row, strict=True)) for row in rows]
    fired = findings_by_rule(pack, lines)
    assert fired == {
        "TST_UNITS_OVER_99": [0, 3],  # text order would put '100' and '1000' below 99
        "TST_CHARGE_AT_LEAST": [0, 1, 3],
        "TST_TEXT_99": [0, 3],  # the cell is trimmed; '099' and '99.0' are other text
        "TST_TEXT_TRUE": [0],  # the raw engine equates true, 1 and 'true'
        "TST_TEXT_1_5": [0],  # the raw engine equates 1.5 and '1.5' through text
    }


@pytest.mark.parametrize(
    "cond, expected",
    [
        ({"field": "cpt", "op": "eq", "value": 98960}, "is not text"),
        ({"field": "curriculum_id", "op": "in", "value": ["A", 7]}, "is not text"),
        ({"field": "units", "op": "gt", "value": "5"}, "is not a whole number"),
        ({"field": "charge", "op": "lt", "value": "12.50"}, "is not a finite number"),
        ({"field": "cpt", "op": "gt", "value": "97000"}, "does not apply to text field"),
        ({"field": "cpt", "op": "eq", "ref": "units"}, "cannot compare text field"),
    ],
)
def test_p9_rule_constants_are_typed_against_the_field(
    tmp_path: Path, cond: dict[str, Any], expected: str
) -> None:
    with pytest.raises(RuleConfigError) as info:
        load(tmp_path, {"TST_MIXED_TYPES": cond})
    [problem] = info.value.problems
    assert problem.path.endswith("TST_MIXED_TYPES.yaml")
    assert problem.line > WHEN_BODY_LINE - 1
    assert expected in problem.message


# -- P10: null, NaN and empty cells are missing ----------------------------------------------------
def test_p10_empty_whitespace_and_none_cells_are_missing(tmp_path: Path) -> None:
    pack = load(
        tmp_path,
        {
            "TST_CURRICULUM_MISSING": {"field": "curriculum_id", "op": "missing"},
            "TST_CURRICULUM_EXISTS": {"field": "curriculum_id", "op": "exists"},
            "TST_MINUTES_MISSING": {"field": "minutes", "op": "missing"},
            "TST_CHARGE_EXISTS": {"field": "charge", "op": "exists"},
        },
    )
    lines = [
        {"curriculum_id": "ADA", "minutes": 30, "charge": "45"},
        {"curriculum_id": "", "minutes": "", "charge": ""},
        {"curriculum_id": "   ", "minutes": "  ", "charge": " "},
        {"curriculum_id": None, "minutes": None, "charge": None},
        {"curriculum_id": "nil", "minutes": "0", "charge": "0"},
    ]
    fired = findings_by_rule(pack, lines)
    assert fired == {
        "TST_CURRICULUM_MISSING": [1, 2, 3],
        "TST_CURRICULUM_EXISTS": [0, 4],
        "TST_MINUTES_MISSING": [1, 2, 3],
        "TST_CHARGE_EXISTS": [0, 4],
    }
    # A missing-only rule (the engine's `$nex`) fires on nothing when every value is present.
    all_present = findings_by_rule(pack, [{"curriculum_id": "X"}, {"curriculum_id": "Y"}])
    assert all_present["TST_CURRICULUM_MISSING"] == []


def test_p1_p10_nan_and_null_from_parquet_and_jsonl_are_missing_and_truncate_nothing(
    tmp_path: Path,
) -> None:
    """Real float NaN (Parquet, JSON Lines) in a batch of over 1000 lines, through the CLI."""
    folder = rules_folder(
        tmp_path,
        {
            "TST_CHARGE_HIGH": {"field": "charge", "op": "gt", "value": 100},
            "TST_CHARGE_MISSING": {"field": "charge", "op": "missing"},
            "TST_CURRICULUM_MISSING": {"field": "curriculum_id", "op": "missing"},
        },
    )
    nan = float("nan")
    special = {5: nan, 6: None, 7: 1e-05, 8: 1e16, 999: nan, 1000: 5e-324, 1001: 1e300, 1002: -1e16}
    n = 1200
    charges = [special.get(i, i + 0.5) for i in range(n)]
    curricula = [None if i % 3 == 0 else f"CUR-{i}" for i in range(n)]
    base = {
        "line_no": 1,
        "patient_id": "PHI-SENTINEL-123",
        "payer_type": "commercial",
        "service_date": "2026-09-01",
        "cpt": "98960",
        "units": 1,
        "rendering_npi": "1234567893",
    }
    table = pa.table(
        {
            "claim_id": [f"P{i}" for i in range(n)],
            **{k: [v] * n for k, v in base.items()},
            "charge": pa.array(charges, type=pa.float64(), from_pandas=True),
            "curriculum_id": curricula,
        }
    )
    parquet = tmp_path / "lines.parquet"
    pq.write_table(table, parquet)
    jsonl = tmp_path / "lines.jsonl"
    json_lines = [
        {"claim_id": "J0", **base, "charge": nan, "curriculum_id": nan},
        {"claim_id": "J1", **base, "charge": None, "curriculum_id": None},
        {"claim_id": "J2", **base, "charge": "", "curriculum_id": ""},
        {"claim_id": "J3", **base, "charge": 1e16, "curriculum_id": "CUR"},
        {"claim_id": "J4", **base},
    ]
    jsonl.write_text(
        "".join(json.dumps(r) + "\n" for r in json_lines), encoding="utf-8"
    )  # NaN as JSON's NaN
    out = tmp_path / "out"
    result = run_cli(
        "run",
        str(parquet),
        str(jsonl),
        "--out",
        str(out),
        "--rules",
        str(folder),
        "--no-bundled-rules",
        "--fail-on",
        "never",
        "--run-date",
        "2026-09-30",
    )
    assert result.returncode == 0, result.stderr
    assert "PHI-SENTINEL-123" not in result.stdout + result.stderr
    fired: dict[str, list[str]] = {}
    for f in read_findings(out):
        fired.setdefault(f["rule_id"], []).append(f["claim_id"])

    def missing(v: Any) -> bool:
        return v is None or v != v

    high = [f"P{i}" for i, c in enumerate(charges) if not missing(c) and c > 100]
    assert fired["TST_CHARGE_HIGH"] == [*high, "J3"]
    assert fired["TST_CHARGE_MISSING"] == ["P5", "P6", "P999", "J0", "J1", "J2", "J4"]
    no_curriculum = [f"P{i}" for i in range(0, n, 3)]
    assert fired["TST_CURRICULUM_MISSING"] == [*no_curriculum, "J0", "J1", "J2", "J4"]


# -- P11 / P12: negation, membership, one finding per line -----------------------------------------
def test_p11_p12_not_in_not_in_with_long_lists_and_double_true_any(tmp_path: Path) -> None:
    long_list = [f"K{i:02d}" for i in range(60)]  # over 50 values: evaluated as a flag column
    short_list = ["K00", "K05", "K59"]
    pack = load(
        tmp_path,
        {
            "TST_IN_LONG": {"field": "curriculum_id", "op": "in", "value": long_list},
            "TST_NOT_IN_LONG": {"field": "curriculum_id", "op": "not_in", "value": long_list},
            "TST_NOT_OF_IN_LONG": {
                "not": {"field": "curriculum_id", "op": "in", "value": long_list}
            },
            "TST_NOT_OF_NOT_IN_SHORT": {
                "not": {"field": "curriculum_id", "op": "not_in", "value": short_list}
            },
            "TST_INT_IN_LONG": {"field": "group_size", "op": "in", "value": list(range(100, 160))},
            "TST_ANY_BOTH_TRUE": {
                "any": [
                    {"field": "curriculum_id", "op": "in", "value": long_list},
                    {"field": "curriculum_id", "op": "matches", "value": "K0.*"},
                ]
            },
            "TST_ANY_THREE_TRUE": {
                "any": [
                    {"field": "units", "op": "gt", "value": 1},
                    {"field": "units", "op": "gt", "value": 2},
                    {"not": {"field": "units", "op": "lt", "value": 3}},
                ]
            },
            "TST_NE_ON_MISSING": {"field": "curriculum_id", "op": "ne", "value": "K00"},
            "TST_NOT_EQ": {"not": {"field": "curriculum_id", "op": "eq", "value": "K00"}},
        },
    )
    lines = [
        {"curriculum_id": "K05", "group_size": 105, "units": 3},  # 0
        {"curriculum_id": "K60", "group_size": 99, "units": 1},  # 1
        {"curriculum_id": "", "group_size": "", "units": 5},  # 2: missing curriculum and size
        {"curriculum_id": "K59", "group_size": 159, "units": 2},  # 3
        {"curriculum_id": "k05", "group_size": 160, "units": 160},  # 4: lower case is other text
        {"curriculum_id": "K00", "group_size": 100, "units": 1},  # 5
    ]
    fired = findings_by_rule(pack, lines)
    assert fired == {
        "TST_IN_LONG": [0, 3, 5],
        "TST_NOT_IN_LONG": [1, 4],  # a missing value is in no list and out of none
        "TST_NOT_OF_IN_LONG": [1, 2, 4],
        "TST_NOT_OF_NOT_IN_SHORT": [0, 2, 3, 5],
        "TST_INT_IN_LONG": [0, 3, 5],
        "TST_ANY_BOTH_TRUE": [0, 3, 5],  # both branches true on 0 and 5: still one finding
        "TST_ANY_THREE_TRUE": [0, 2, 3, 4],
        "TST_NE_ON_MISSING": [0, 1, 3, 4],
        "TST_NOT_EQ": [0, 1, 2, 3, 4],
    }


# -- P13: the regex dialect ------------------------------------------------------------------------
REGEX_CASES: list[tuple[str, dict[str, bool]]] = [
    (
        r"^992\d\d$",
        {"99213": True, "x99213": False, "99213x": False, "^99213": False, "99213$": False},
    ),
    (r"\d{5}", {"12345": True, r"\ddddd": False, "1234": False, "123456": False}),
    (r"50%", {"50%": True, "50": False, "50%%": False}),
    (r"A\.B", {"A.B": True, "AxB": False, "A%.B": False}),
    (r"A.B", {"A.B": True, "AxB": True, 'A"B': True, "AB": False}),
    (r"99", {"99": True, "199": False, "990": False}),
    (r".*99.*", {"x99y": True, "99": True, "9x9": False}),
    (r"caf.", {"café": True, "cafe": True, "caf": False}),
    (r"\w+", {"abc_1": True, "é": False, "a-b": False}),
    (r"[^0-9]+", {"abc": True, "a1": False}),
    (r"(ab|cd)e", {"abe": True, "cde": True, "abcde": False, "ab": False}),
    (r"[%.]x", {"%x": True, ".x": True, "ax": False}),
    (r"a/b", {"a/b": True, r"a\/b": False}),
]


def _regex_rules(cases: list[tuple[str, dict[str, bool]]]) -> dict[str, dict[str, Any]]:
    return {
        f"TST_RX_{i}": {"field": "curriculum_id", "op": "matches", "value": p}
        for i, (p, _) in enumerate(cases)
    }


def test_p13_regexes_mean_what_python_fullmatch_means(tmp_path: Path) -> None:
    pack = load(tmp_path, _regex_rules(REGEX_CASES))
    values = list(dict.fromkeys(v for _, vals in REGEX_CASES for v in vals))
    fired = findings_by_rule(pack, [{"curriculum_id": v} for v in values])
    wrong = []
    for i, (pattern, expected) in enumerate(REGEX_CASES):
        for value, should_fire in expected.items():
            python = bool(re.fullmatch(pattern, value, re.ASCII | re.DOTALL))
            assert python == should_fire, (pattern, value)  # the hand answer is Python's
            if (values.index(value) in fired[f"TST_RX_{i}"]) != should_fire:
                wrong.append(f"{pattern!r} on {value!r}: expected a match: {should_fire}")
    assert wrong == []


# Patterns the translator accepts, or should reject: either load_pack rejects them with a location,
# or the scrubber's answer is Python's. Never an engine failure at run time, never a wrong answer.
EDGE_PATTERNS = [
    r"\$5",  # an escaped '$' (a literal dollar sign)
    r"[^/]+",  # punctuation inside a class
    r"[a-c-]+",  # a trailing '-' in a class
    r"x{,3}",  # Python reads {,3} as {0,3}
    r"a{0}b",  # zero repeats
    r"()",  # an empty group
    r"(|a)b",  # an empty alternative
    r"a||b",
    r"(?:ab)+",
]
EDGE_VALUES = "$5 5 ^x x x$ $x ^ - abc- xx xxx xxxx x{,3} a{0}b ab b a () x/y / # @x abab".split()  # noqa: SIM905


@pytest.mark.parametrize("pattern", EDGE_PATTERNS)
def test_p13_edge_patterns_are_rejected_at_load_or_answer_like_python(
    tmp_path: Path, pattern: str
) -> None:
    try:
        pack = load(
            tmp_path, {"TST_RX_EDGE": {"field": "curriculum_id", "op": "matches", "value": pattern}}
        )
    except RuleConfigError as exc:
        [problem] = exc.problems
        assert problem.path.endswith("TST_RX_EDGE.yaml") and problem.line == WHEN_BODY_LINE + 2
        return
    fired = findings_by_rule(pack, [{"curriculum_id": v} for v in EDGE_VALUES])
    expected = [
        i for i, v in enumerate(EDGE_VALUES) if re.fullmatch(pattern, v, re.ASCII | re.DOTALL)
    ]
    assert fired["TST_RX_EDGE"] == expected


UNRUNNABLE = [
    "(?=A)A",  # lookahead
    "(?i)abc",  # inline flag
    "[0-9",  # the engine errors (501); Python too
    "(abc",  # the engine silently matches 'abc'
    r"\s+",  # no whitespace class with Python's meaning
    r"\bA",  # word boundary
    "a*?",  # lazy
    "9{101}",  # repeat over the engine's 100
    "A{2,}",  # open repeat
    r"(a)\1",  # back reference
    'a"b',  # the engine sees JSON text: a double quote cannot be matched
    "A^B",  # '^' inside: the engine would take it literally
    "|".join(f"{i:05d}" for i in range(600)),  # too long for the engine's DFA
]


def test_p13_patterns_the_engine_cannot_run_are_rejected_at_load_with_their_location(
    tmp_path: Path,
) -> None:
    rules = {}
    for i, pattern in enumerate(UNRUNNABLE):
        quoted = "'" + pattern.replace("'", "''") + "'"
        rules[f"TST_RX_BAD_{i}"] = f"  field: curriculum_id\n  op: matches\n  value: {quoted}\n"
    with pytest.raises(RuleConfigError) as info:
        load(tmp_path, rules)
    located = {(Path(p.path).name, p.line, p.col) for p in info.value.problems}
    expected = {(f"TST_RX_BAD_{i}.yaml", WHEN_BODY_LINE + 2, 10) for i in range(len(UNRUNNABLE))}
    assert located == expected
    assert all("cannot run in the rules engine" in p.message for p in info.value.problems)
    assert str(info.value).count(": error: ") == len(UNRUNNABLE)


# -- P14: text the engine sees as JSON -------------------------------------------------------------
AWKWARD_TEXT = [
    'a"b',
    "a\\b",
    "x/y",
    "é",
    "Ünï-日本",
    "a\tb",
    "it's",
    'a\\"b',
    "\\u00e9",
    "x\\/y",
    "<&>",
    "😀",
    'ñ/\\"',
]


def test_p14_quotes_backslashes_slashes_and_non_ascii_equal_the_same_constant(
    tmp_path: Path,
) -> None:
    rules: dict[str, dict[str, Any] | str] = {}
    for i, text in enumerate(AWKWARD_TEXT):
        rules[f"TST_EQ_{i}"] = {"field": "curriculum_id", "op": "eq", "value": text}
        rules[f"TST_NE_{i}"] = {"field": "curriculum_id", "op": "ne", "value": text}
        rules[f"TST_IN_{i}"] = {"field": "curriculum_id", "op": "in", "value": ["ZZZ", text]}
    rules["TST_ANY_CHAR"] = {"field": "curriculum_id", "op": "matches", "value": "a.b"}
    pack = load(tmp_path, rules)
    fired = findings_by_rule(pack, [{"curriculum_id": t} for t in AWKWARD_TEXT])
    everyone = list(range(len(AWKWARD_TEXT)))
    for i in everyone:
        assert fired[f"TST_EQ_{i}"] == [i], AWKWARD_TEXT[i]
        assert fired[f"TST_IN_{i}"] == [i], AWKWARD_TEXT[i]
        assert fired[f"TST_NE_{i}"] == [j for j in everyone if j != i], AWKWARD_TEXT[i]
    # 'a.b': one character between a and b: a"b, a\b and a<TAB>b match; a\"b (4 characters) not.
    assert fired["TST_ANY_CHAR"] == [0, 1, 5]


def test_p14_a_value_too_long_for_the_engine_never_equals_a_constant(tmp_path: Path) -> None:
    """Engine lengths are 16-bit: a 65,536-byte value would equal anything."""
    pack = load(tmp_path, {"TST_EQ_ADA": {"field": "curriculum_id", "op": "eq", "value": "ADA"}})
    lines = [
        {"curriculum_id": "A" * 65536},
        {"curriculum_id": "ADA" + " x" * 35000},
        {"curriculum_id": "ADA"},
    ]
    assert findings_by_rule(pack, lines) == {"TST_EQ_ADA": [2]}


# -- P13b: the engine's DFA merges overlapping alternatives wrongly ------------------------------
def test_p13b_overlapping_alternatives_answer_like_python(tmp_path: Path) -> None:
    """Found by tests/test_differential.py: each branch matches alone, the three together do not."""
    pattern = "a{3}.[^A-Z{(}]?|[^+]|..{3}."
    guard = {"k": "c"}
    control = {"r": {"all": [{"m": {"$and": [guard, {"$mt": {"v": "a{3}.[^A-Z%{%(%}]?|[^%+]|..{3}."}}]}}]},
               "seen": {"all": [{"m": guard}]}}  # every fact is handled, so the batch returns code 0
    fired_raw = raw_engine_fired(control, ['{"k":"c","id":0,"v":"aaab"}'])
    assert fired_raw and not any("r" in m for m in fired_raw)  # the engine's wrong answer: no match
    pack = load(tmp_path, {"TST_ALTERNATIVES": {"field": "curriculum_id", "op": "matches", "value": pattern}})
    values = ["aaab", "x", "+", "abcdef", "aaa", "zzzzz", ""]
    fired = findings_by_rule(pack, [{"curriculum_id": v} for v in values])
    expected = [i for i, v in enumerate(values) if v and re.fullmatch(pattern, v, re.ASCII | re.DOTALL)]
    assert fired["TST_ALTERNATIVES"] == expected
    assert 0 in expected
