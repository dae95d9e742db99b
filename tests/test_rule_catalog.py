"""Rules about rules: the bundled pack is checked as a corpus (semgrep's rule lints, ruff's doc check)."""

from __future__ import annotations

import re
import string
from collections import Counter
from pathlib import Path

import pytest

from scrubber.fields import CAUSES
from scrubber.loader import BUNDLED_RULES, RulePack, field_types
from scrubber.selftest import baseline_findings

# Folder -> id prefix. `claim/` holds claim-level rules whose ids name the problem directly.
AREA_PREFIX = {"edu": "EDU_", "pt": "PT_", "dsmt": "DSMT_", "tele": "TELE_", "dx": "DX_", "npi": "NPI_", "rtm": "RTM_"}
# Words that name a fix or a verdict instead of the problem (ruff's naming convention).
BAD_NAME_WORDS = ("disallow", "avoid", "use", "check", "banned", "ensure", "must")


def test_ids_are_unique_and_match_their_file(pack: RulePack) -> None:
    counts = Counter(r.id for r in pack.rules)
    assert [i for i, n in counts.items() if n > 1] == []
    for rule in pack.rules:
        assert Path(rule.path).stem == rule.id


def test_ids_carry_their_folder_prefix(pack: RulePack) -> None:
    wrong = []
    for rule in pack.rules:
        folder = Path(rule.path).resolve().relative_to(BUNDLED_RULES).parts[0]
        prefix = AREA_PREFIX.get(folder)
        if prefix and not rule.id.startswith(prefix):
            wrong.append(f"{rule.id} in {folder}/ should start with {prefix}")
        if folder not in AREA_PREFIX and folder != "claim":
            wrong.append(f"{rule.id} is in unknown folder {folder}/")
    assert wrong == []


def test_names_name_the_problem(pack: RulePack) -> None:
    bad = [r.name for r in pack.rules if r.name.split("-")[0] in BAD_NAME_WORDS]
    assert bad == []
    names = Counter(r.name for r in pack.rules)
    assert [n for n, c in names.items() if c > 1] == []


def test_every_rule_has_examples_both_ways_and_sources(pack: RulePack) -> None:
    for rule in pack.rules:
        kinds = {e.expect for e in rule.examples if not e.todo}
        assert kinds == {"fires", "passes"}, rule.id
        assert rule.sources, rule.id
        assert all(s.title.strip() for s in rule.sources), rule.id


def test_unverified_claims_are_said_in_the_rationale(pack: RulePack) -> None:
    """A rule listing UNVERIFIED facts explains them where an analyst reads (rationale)."""
    for rule in pack.rules:
        if rule.unverified:
            assert rule.rationale, f"{rule.id} lists unverified facts but has no rationale"


def test_messages_start_lower_case_without_period(pack: RulePack) -> None:
    for rule in pack.rules:
        first = rule.message.lstrip("{")[0]
        assert not first.isupper() or rule.message.startswith("{"), rule.id
        assert not rule.message.rstrip().endswith("."), rule.id


def test_baseline_line_triggers_no_rule(pack: RulePack) -> None:
    findings = baseline_findings(pack)
    assert findings["rule_id"].tolist() == []


def test_every_contract_cause_has_a_rule(pack: RulePack) -> None:
    covered = {r.cause for r in pack.rules}
    assert [c for c in CAUSES if c not in covered] == []


@pytest.mark.parametrize("cause", ["medical_necessity", "group_code", "missing_order", "unqualified_provider"])
def test_the_four_brief_causes_are_covered_from_several_angles(pack: RulePack, cause: str) -> None:
    assert sum(r.cause == cause for r in pack.rules) >= 3


def test_every_field_a_rule_reads_or_shows_is_a_contract_column_or_derived_field(pack: RulePack) -> None:
    known = set(field_types())
    for rule in pack.rules:
        shown = {f for text in (rule.message, rule.fix) for _, f, _, _ in string.Formatter().parse(text) if f}
        assert rule.fields() | shown <= known | {"claim_id", "line_no"}, rule.id
        assert "patient_id" not in rule.fields() | shown, rule.id


def test_denial_codes_are_well_formed(pack: RulePack) -> None:
    for rule in pack.rules:
        assert re.fullmatch(r"(CO|OA|PR|PI|CR)-\d{1,3}", rule.denial_code), rule.id


def test_every_timed_therapy_code_is_a_therapy_code(pack: RulePack) -> None:
    """The 8-minute rule counts timed_codes.csv's therapy codes; the GP-modifier and plan-of-care
    rules read the therapy_codes set: a code in one and not the other is checked by half of them."""
    timed = {row["cpt"] for row in pack.reference.tables["timed_codes.csv"] if row["kind"] == "therapy"}
    assert timed <= set(pack.reference.code_sets["therapy_codes"].values)


def test_the_readme_counts_the_rules_of_each_cause(pack: RulePack) -> None:
    """README.md's table of causes says how many rules each has: it must say what the pack holds."""
    readme = (BUNDLED_RULES.parent / "README.md").read_text(encoding="utf-8")
    counted = Counter(r.cause for r in pack.rules)
    said: dict[str, int] = {}
    for causes, numbers in re.findall(r"^\| ((?:`[a-z_]+`(?:, )?)+) \| ([0-9, ]+) \|", readme, re.MULTILINE):
        for cause, number in zip(re.findall(r"`([a-z_]+)`", causes), numbers.split(","), strict=True):
            said[cause] = int(number)
    assert said == dict(counted)
    assert f"{len(pack.rules)} rules in `rules/`" in readme
