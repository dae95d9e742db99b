"""Rule folder mistakes, all reported in one pass as path:line:col (tests/fixtures/bad_rules)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scrubber import yamlfile
from scrubber.errors import RuleConfigError
from scrubber.loader import BUNDLED_RULES, load_pack

BAD_RULES = Path(__file__).resolve().parent / "fixtures" / "bad_rules"

# (file under bad_rules, line, column, words the message must contain), worked out from the files.
EXPECTED = [
    ("edu/EDU_MANY_MISTAKES.yaml", 7, 1, ["unknown key 'rationle'", "did you mean 'rationale'"]),
    ("edu/EDU_MANY_MISTAKES.yaml", 10, 15, ["unknown field 'cpt_code'"]),
    ("edu/EDU_MANY_MISTAKES.yaml", 11, 24, ["unknown op 'equals'"]),
    ("edu/EDU_MANY_MISTAKES.yaml", 12, 37, ["'two'", "whole number"]),
    ("edu/EDU_MANY_MISTAKES.yaml", 13, 35, ["'in' list is empty"]),
    ("edu/EDU_MANY_MISTAKES.yaml", 14, 50, ["(?=ADA)ADA.*", "cannot run in the rules engine"]),
    ("edu/EDU_MANY_MISTAKES.yaml", 15, 35, ["98960", "not text", "quote it"]),
    ("edu/EDU_NO_EXAMPLES.yaml", 1, 1, ["missing required key 'examples'"]),
    ("edu/EDU_NO_SOURCES.yaml", 10, 10, ["'sources'", "at least one source"]),
    ("pt/PT_BAD_REGEX.yaml", 9, 40, ["[0-9", "cannot run in the rules engine"]),
    ("pt/PT_BAD_REGEX.yaml", 10, 40, ["\\\\s+", "cannot run in the rules engine"]),
    ("pt/PT_BAD_REGEX.yaml", 11, 40, ["9{101}", "cannot run in the rules engine"]),
    ("pt/PT_BAD_REGEX.yaml", 12, 45, ["'acme-.*' has lower-case letters", "payer_id is read upper-cased"]),
    ("pt/PT_DUPLICATE.yaml", 1, 5, ["duplicate id 'PT_DUPLICATE'", "edu/PT_DUPLICATE.yaml"]),
    ("pt/PT_TYPO_IN_CONDITION.yaml", 10, 26, ["op 'gt' needs exactly one of"]),
    ("pt/PT_TYPO_IN_CONDITION.yaml", 10, 30, ["unknown key 'valeu'", "did you mean 'value'"]),
    ("pt/PT_TYPO_IN_CONDITION.yaml", 21, 17, ["'severity' is one of deny, at-risk"]),
]


@pytest.fixture(scope="module")
def problems() -> list:
    with pytest.raises(RuleConfigError) as info:
        load_pack([BAD_RULES])
    return info.value.problems


def test_every_problem_in_every_file_is_reported_in_one_pass(problems: list) -> None:
    found = [(Path(p.path).relative_to(BAD_RULES).as_posix(), p.line, p.col) for p in problems]
    assert found == [(path, line, col) for path, line, col, _ in EXPECTED]


@pytest.mark.parametrize(
    "path, line, col, words", EXPECTED, ids=[f"{p}:{ln}:{c}" for p, ln, c, _ in EXPECTED]
)
def test_each_problem_says_what_is_wrong(
    problems: list, path: str, line: int, col: int, words: list[str]
) -> None:
    [problem] = [
        p
        for p in problems
        if (Path(p.path).relative_to(BAD_RULES).as_posix(), p.line, p.col) == (path, line, col)
    ]
    for word in words:
        assert word in problem.message


def test_the_error_text_is_one_path_line_col_line_per_problem(problems: list) -> None:
    with pytest.raises(RuleConfigError) as info:
        load_pack([BAD_RULES])
    lines = str(info.value).splitlines()
    assert len(lines) == len(EXPECTED)
    for text, (path, line, col, _) in zip(lines, EXPECTED, strict=True):
        assert text.startswith(f"{BAD_RULES / path}:{line}:{col}: error: ")


def test_the_fixture_points_at_the_lines_it_claims() -> None:
    """Guard for the fixture itself: each expected position holds what its message names."""
    text = {p: (BAD_RULES / p).read_text(encoding="utf-8").splitlines() for p, *_ in EXPECTED}
    assert text["edu/EDU_MANY_MISTAKES.yaml"][6].startswith("rationle:")
    assert text["edu/EDU_MANY_MISTAKES.yaml"][9][14:].startswith("cpt_code")
    assert text["edu/EDU_MANY_MISTAKES.yaml"][10][23:].startswith("equals")
    assert text["pt/PT_TYPO_IN_CONDITION.yaml"][9][29:].startswith("valeu")
    assert text["pt/PT_DUPLICATE.yaml"][0] == "id: PT_DUPLICATE"


def _good_folder(root: Path) -> Path:
    folder = root / "rules"
    folder.mkdir()
    for name in ("baseline_line.yaml", "code_sets.yaml", "payers.yaml"):
        shutil.copy(BUNDLED_RULES / name, folder / name)
    shutil.copytree(BUNDLED_RULES / "tables", folder / "tables")
    return folder


def test_invalid_yaml_and_duplicate_keys_are_located_alongside_other_files(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path)
    shutil.copy(BAD_RULES / "edu" / "EDU_NO_SOURCES.yaml", folder / "EDU_NO_SOURCES.yaml")
    (folder / "TST_BROKEN_YAML.yaml").write_text(
        "id: TST_BROKEN_YAML\nwhen: {field: cpt, op: eq\nname: x\n", encoding="utf-8"
    )
    no_sources = (BAD_RULES / "edu" / "EDU_NO_SOURCES.yaml").read_text(encoding="utf-8")
    (folder / "TST_DUPLICATE_KEY.yaml").write_text(
        no_sources.replace("EDU_NO_SOURCES", "TST_DUPLICATE_KEY").replace(
            "sources: []", "sources: [{title: t}]"
        )
        + "cause: documentation\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleConfigError) as info:
        load_pack([folder])
    by_file = {}
    for p in info.value.problems:
        by_file.setdefault(Path(p.path).name, []).append((p.line, p.col, p.message))
    assert [(line, col) for line, col, _ in by_file["EDU_NO_SOURCES.yaml"]] == [(10, 10)]
    [(line, _, message)] = by_file["TST_BROKEN_YAML.yaml"]
    assert line in (2, 3) and "invalid YAML" in message
    duplicate = [
        (line, col)
        for line, col, m in by_file["TST_DUPLICATE_KEY.yaml"]
        if "duplicate key 'cause'" in m
    ]
    assert duplicate == [(len(no_sources.splitlines()) + 1, 1)]


def test_a_missing_rules_folder_is_a_located_problem(tmp_path: Path) -> None:
    with pytest.raises(RuleConfigError) as info:
        load_pack([tmp_path / "no-such-rules"])
    [problem] = info.value.problems
    assert "no such rules folder" in problem.message and problem.path.endswith("no-such-rules")


def test_a_date_that_does_not_exist_is_located_not_a_crash(tmp_path: Path) -> None:
    """YAML reads an unquoted 2026-02-30 as a date, and fails; the loader keeps the text, so the check
    that reads it says where it is (no 'internal error')."""
    folder = _good_folder(tmp_path)
    rule = (BUNDLED_RULES / "edu" / "EDU_CURRICULUM_MISSING.yaml").read_text(encoding="utf-8")
    (folder / "EDU_CURRICULUM_MISSING.yaml").write_text(
        rule.replace("cause: documentation\n", "cause: documentation\neffective_from: 2026-02-30\n"), encoding="utf-8")
    with pytest.raises(RuleConfigError) as info:
        load_pack([folder])
    [problem] = info.value.problems
    assert (Path(problem.path).name, problem.line) == ("EDU_CURRICULUM_MISSING.yaml", rule.splitlines().index("cause: documentation") + 2)
    assert "effective_from '2026-02-30' is not a date" in problem.message


def test_a_code_with_a_leading_zero_is_its_text_not_an_octal_number(tmp_path: Path) -> None:
    (tmp_path / "example.yaml").write_text("line: {cpt: 0100, units: 010, pos: 02, minutes: 10}\n", encoding="utf-8")
    data, problems = yamlfile.load(tmp_path / "example.yaml")
    assert problems == [] and data["line"] == {"cpt": "0100", "units": "010", "pos": "02", "minutes": 10}
