"""Every rule's examples, one test each: `pytest -k EDU_ORDER_MISSING` runs one rule's."""

from __future__ import annotations

import pytest

from scrubber.loader import BUNDLED_RULES, load_pack
from scrubber.selftest import check_example

_PACK = load_pack([BUNDLED_RULES])
_CASES = [(rule, ex) for rule in _PACK.rules for ex in rule.examples]


def _case_id(case: tuple) -> str:
    rule, ex = case
    kind = ("todo-" if ex.todo else "") + ex.expect
    return f"{rule.id}-{kind}-{ex.title}".replace(" ", "-")


@pytest.mark.parametrize("case", _CASES, ids=[_case_id(c) for c in _CASES])
def test_rule_example(case: tuple) -> None:
    rule, example = case
    outcome = check_example(rule, example, _PACK)
    if example.todo:
        # A known gap (semgrep's todoruleid): it must still fail; once it passes, promote it.
        assert outcome.passed, outcome.detail
    else:
        assert outcome.passed, f"{example.where.path if example.where else rule.path}: {outcome.detail}"
