"""junit.xml: the run as a test report that GitLab, Jenkins and GitHub Actions reporters show.

One test case per loaded rule. A rule fails when it found lines at or above `--fail-on`; the
failure lists `claim_id:line_no` and the message (the first MAX_LISTED, then how many more), the
denial code and the fix (as written for the first line listed). Findings below `--fail-on` are
listed in the case's system-out and do not fail it. Messages cite values and `claim_id:line_no`,
never patient identifiers (rules cannot read them), and nothing else from a line is written here.

The document follows the JUnit XML schema used by Jenkins (junit-10.xsd; tested).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from scrubber.loader import RulePack
from scrubber.report import FAIL_ON

MAX_LISTED = 50
# Characters XML 1.0 cannot carry at all (an export cell may hold them): shown as U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;",
                          "\t": "&#9;"})
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def attr(value: Any) -> str:
    return '"' + _NOT_XML.sub("\ufffd", str(value)).translate(_ESCAPES) + '"'


def text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value)).translate(_TEXT_ESCAPES)


def _listings(findings: pd.DataFrame, groups: dict[tuple[str, bool], np.ndarray]) -> dict[tuple[str, bool], str]:
    """For each group of finding rows: its first MAX_LISTED as `claim_id:line_no  severity  message`,
    then how many more (the rows of all groups gathered at once: 100k findings stay cheap)."""
    chosen = {key: rows[:MAX_LISTED] for key, rows in groups.items()}
    every = np.concatenate([*chosen.values(), np.empty(0, dtype=np.int64)])
    part = findings.iloc[every]
    keys = (part["claim_id"].astype("string").fillna("?") + ":"
            + part["line_no"].astype("Int64").astype("string").fillna("?")).tolist()
    texts = [f"{k}  {s}  {m}" for k, s, m in zip(keys, part["severity"].tolist(), part["message"].tolist(), strict=True)]
    out, at = {}, 0
    for key, rows in chosen.items():
        lines = texts[at:at + len(rows)]
        at += len(rows)
        more = len(groups[key]) - len(rows)
        if more:
            lines.append(f"... and {more:,} more line{'s' if more != 1 else ''} (findings.jsonl and report.html list them all)")
        out[key] = "\n".join(lines)
    return out


def _first_fix(findings: pd.DataFrame, rows: np.ndarray, template: str) -> str:
    """The fix as written for the first line listed (a rule's fix names the line's values:
    "Append GP to {cpt}"), or the rule's template where that line's text was not kept."""
    fix = findings["fix"].iloc[int(rows[0])]
    return str(fix) if isinstance(fix, str) else template


def render_junit(summary: dict[str, Any], findings: pd.DataFrame, pack: RulePack) -> str:
    fail_on = summary["fail_on"]
    failing = FAIL_ON[fail_on]
    # Finding rows of each (rule, at or above --fail-on), in finding order (line, then rule).
    groups: dict[tuple[str, bool], np.ndarray] = {}
    if len(findings):
        codes, rule_ids = pd.factorize(findings["rule_id"])
        above = findings["severity"].isin(failing).to_numpy(dtype=bool)
        key = codes.astype(np.int64) * 2 + above
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            k = int(key[order[a]])
            groups[(str(rule_ids[k // 2]), bool(k % 2))] = order[a:b]
    listed = _listings(findings, groups) if groups else {}
    deny = (findings["severity"] == "deny").to_numpy(dtype=bool) if len(findings) else np.zeros(0, dtype=bool)
    rules = sorted(pack.rules, key=lambda r: (r.cause, r.id))
    cases, failures = [], 0
    for rule in rules:
        body = []
        if (rule.id, True) in groups:
            failures += 1
            n = len(groups[(rule.id, True)])
            message = (f"{n:,} line{'s' if n != 1 else ''} at or above --fail-on {fail_on}: {rule.name} "
                       f"(expected denial {rule.denial_code})")
            detail = (f"{rule.id} ({rule.cause}): {rule.summary}\nExpected denial: {rule.denial_code}\n"
                      f"Fix: {_first_fix(findings, groups[(rule.id, True)], rule.fix)}\n\n{listed[(rule.id, True)]}")
            worst = "deny" if deny[groups[(rule.id, True)]].any() else "at-risk"  # payers may override severity
            body.append(f'<failure type="{worst}" message={attr(message)}>{text(detail)}</failure>')
        if (rule.id, False) in groups:
            n = len(groups[(rule.id, False)])
            note = (f"{n:,} line{'s' if n != 1 else ''} not failing the run (--fail-on {fail_on}):\n"
                    f"{listed[(rule.id, False)]}")
            body.append(f"<system-out>{text(note)}</system-out>")
        cases.append(f'<testcase classname={attr("scrubber." + rule.cause)} name={attr(rule.id)} time="0"'
                     + (f">{''.join(body)}</testcase>" if body else "/>"))
    seconds = f"{float(summary['run'].get('seconds') or 0):.3f}"
    inputs = ", ".join(i["file"] for i in summary["inputs"])
    props = [("scrubber_version", summary["scrubber_version"]), ("rules_version", summary["rules"]["version"]),
             ("fail_on", fail_on), ("inputs", inputs), ("lines", summary["lines"]["total"]),
             ("lines_deny", summary["lines"]["deny"]), ("lines_at_risk", summary["lines"]["at-risk"]),
             ("lines_clean", summary["lines"]["clean"]), ("exit_code", summary["exit_code"])]
    n = len(rules)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="scrubber" tests="{n}" failures="{failures}" errors="0" time="{seconds}">\n'
        f'<testsuite name={attr("scrubber: " + inputs)} tests="{n}" failures="{failures}" errors="0" skipped="0" '
        f'time="{seconds}" timestamp={attr(summary["run"].get("started", ""))}>\n'
        "<properties>" + "".join(f"<property name={attr(k)} value={attr(v)}/>" for k, v in props) + "</properties>\n"
        + "\n".join(cases)
        + "\n</testsuite>\n</testsuites>\n"
    )
