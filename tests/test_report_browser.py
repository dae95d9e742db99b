"""report.html in a real browser: headless Chromium (Debian's `chromium`) opens the sample run's report
from disk and the tests read what it shows: no console errors, the figures, the four charts, the
table, its filters, sorting and pages, and that values from the export are shown, never run.

The browser is driven over the DevTools protocol on a pipe (tests/headless.py). When Chromium is
missing, it is installed with apt-get if this runs as root in CI (CI=true) or with
SCRUBBER_INSTALL_BROWSER=1; otherwise these tests are skipped and say why. .ci/run installs it
before the suite runs.

Each run saves a screenshot beside the test's output; SCRUBBER_UPDATE_SCREENSHOT=1 also writes it to
docs/report.png (the picture in the README).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SAMPLES, read_findings, run_cli, write_csv
from tests.headless import Chromium, find_chromium

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "docs" / "report.png"


def install_chromium() -> str | None:
    """Install Debian's chromium when allowed (root, and CI=true or SCRUBBER_INSTALL_BROWSER=1)."""
    allowed = os.environ.get("CI") == "true" or os.environ.get("SCRUBBER_INSTALL_BROWSER") == "1"
    if not allowed or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return find_chromium()


@pytest.fixture(scope="module")
def chromium_path() -> str:
    found = find_chromium() or install_chromium()
    if not found:
        pytest.skip("headless Chromium is not installed: `apt-get install -y chromium` (Debian), or run the "
                    "tests as root with SCRUBBER_INSTALL_BROWSER=1 to have them install it")
    return found


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "out"
    done = run_cli("run", str(SAMPLES / "clinic_export.csv"), "--out", str(out), "--fail-on", "never",
                   "--run-date", "2026-10-01")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Chromium]:
    with Chromium(chromium_path, width=1440, height=1800) as chromium:
        yield chromium


@pytest.fixture
def page(browser: Chromium, sample_report: Path) -> Chromium:
    browser.events.clear()
    browser.open((sample_report / "report.html").as_uri())
    assert browser.evaluate("document.body.dataset.ready") == "1"
    return browser


def shown_rows(page: Chromium) -> list[dict[str, str]]:
    return page.evaluate("""Array.from(document.querySelectorAll('#findings tbody tr')).map(tr => {
        const td = tr.querySelectorAll('td');
        return {key: td[0].textContent, status: td[1].textContent, severity: td[2].textContent,
                cause: td[3].textContent, rule: td[4].textContent, carc: td[5].textContent,
                payer: td[6].firstChild.textContent, message: td[10].firstChild.textContent};
    })""")


def choose(page: Chromium, column: str, label_prefix: str) -> None:
    """Pick the option of a filter whose label starts with `label_prefix` (as a person would)."""
    found = page.evaluate(f"""(() => {{
        const sel = document.getElementById('filter-{column}');
        const opt = Array.from(sel.options).find(o => o.textContent.startsWith({json.dumps(label_prefix)}));
        if (!opt) return false;
        sel.value = opt.value;
        sel.dispatchEvent(new Event('change'));
        return true;
    }})()""")
    assert found, f"no {column} option {label_prefix!r}"


def count_text(page: Chromium) -> str:
    return page.evaluate("document.getElementById('count').textContent")


def test_the_report_opens_from_disk_without_console_errors_and_shows_figures_charts_and_table(
    page: Chromium, sample_report: Path, tmp_path: Path
) -> None:
    summary = json.loads((sample_report / "summary.json").read_text(encoding="utf-8"))
    findings = read_findings(sample_report)
    assert page.errors() == []
    cards = page.evaluate("Array.from(document.querySelectorAll('.card')).map(c => "
                          "[c.querySelector('.k').textContent, c.querySelector('.v').textContent])")
    assert dict(cards)["Lines"] == f"{summary['lines']['total']:,}"
    assert dict(cards)["Deny"] == f"{summary['lines']['deny']:,}"
    assert dict(cards)["At-risk"] == f"{summary['lines']['at-risk']:,}"
    assert dict(cards)["Clean"] == f"{summary['lines']['clean']:,}"
    assert dict(cards)["Dollars at risk (charges)"] == f"${summary['dollars_at_risk']['total']:,.2f}"
    header = page.evaluate("document.querySelector('header').textContent")
    assert "clinic_export.csv" in header and summary["rules"]["version"] in header
    assert summary["run"]["started"] in header

    charts: dict[str, Any] = page.evaluate("""Object.fromEntries(Array.from(document.querySelectorAll('.chart')).map(c => {
        const box = c.querySelector('svg').getBoundingClientRect();
        return [c.id, {bars: c.querySelectorAll('rect.bar').length, width: box.width, height: box.height,
                       labels: Array.from(c.querySelectorAll('text.lbl')).map(t => t.dataset.key)}];
    }))""")
    assert set(charts) == {"chart-cause", "chart-payer", "chart-rules", "chart-dates"}
    for name, chart in charts.items():
        assert chart["bars"] > 0 and chart["width"] > 300 and chart["height"] > 100, name
    assert set(charts["chart-cause"]["labels"]) == set(summary["by_cause"])
    assert len(charts["chart-rules"]["labels"]) == min(15, len(summary["by_rule"]))
    assert set(charts["chart-payer"]["labels"]) <= set(summary["by_payer"])

    rows = shown_rows(page)
    assert len(rows) == min(100, len(findings))
    assert count_text(page) == f"{len(findings)} of {len(findings)} findings"
    first = findings[0]
    assert rows[0]["key"] == f"{first['claim_id']}:{first['line_no']}"
    assert (rows[0]["rule"], rows[0]["cause"], rows[0]["carc"], rows[0]["message"]) == (
        first["rule_id"], first["cause"], first["carc"], first["message"])

    shot = tmp_path / "report.png"
    data = page.screenshot(shot)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    if os.environ.get("SCRUBBER_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_filters_narrow_the_table_to_the_chosen_cause_severity_payer_and_rule(
    page: Chromium, sample_report: Path
) -> None:
    findings = read_findings(sample_report)
    summary = json.loads((sample_report / "summary.json").read_text(encoding="utf-8"))
    choose(page, "cause", "group_code (")
    expected = [f for f in findings if f["cause"] == "group_code"]
    assert count_text(page) == f"{len(expected)} of {len(findings)} findings"
    rows = shown_rows(page)
    assert len(rows) == len(expected) and {r["cause"] for r in rows} == {"group_code"}

    choose(page, "severity", "deny (")
    expected = [f for f in expected if f["severity"] == "deny"]
    assert [r["key"] for r in shown_rows(page)] == [f"{f['claim_id']}:{f['line_no']}" for f in expected]
    assert {r["severity"] for r in shown_rows(page)} == {"deny"}

    page.evaluate("document.getElementById('reset').click()")
    assert count_text(page) == f"{len(findings)} of {len(findings)} findings"

    payer = max(summary["by_payer"], key=lambda p: summary["by_payer"][p]["deny"])
    choose(page, "payer", f"{payer} (")
    rows = shown_rows(page)
    assert rows and {r["payer"] for r in rows} == {payer}
    choose(page, "rule", "PRIOR_AUTH_MISSING (")
    expected = [f for f in findings if f["rule_id"] == "PRIOR_AUTH_MISSING"]
    shown = shown_rows(page)
    assert {r["rule"] for r in shown} <= {"PRIOR_AUTH_MISSING"} and len(shown) <= len(expected)

    page.evaluate("document.getElementById('reset').click()")
    page.evaluate("""(() => { const s = document.getElementById('search'); s.value = 'C2610001';
                     s.dispatchEvent(new Event('input')); })()""")
    page.evaluate("new Promise(r => setTimeout(r, 400))")  # the search box waits for typing to pause
    assert {r["key"].split(":")[0] for r in shown_rows(page)} == {"C2610001"}
    assert page.errors() == []


def test_clicking_a_header_sorts_and_clicking_again_reverses(page: Chromium) -> None:
    def click(column: str) -> None:
        page.evaluate(f"document.querySelector('#findings th[data-col={column}] button').click()")

    click("rule")
    rules = [r["rule"] for r in shown_rows(page)]
    assert rules == sorted(rules)
    assert page.evaluate("document.querySelector('th[data-col=rule]').getAttribute('aria-sort')") == "ascending"
    click("rule")
    rules = [r["rule"] for r in shown_rows(page)]
    assert rules == sorted(rules, reverse=True)
    click("key")
    keys = [r["key"] for r in shown_rows(page)]
    assert keys == sorted(keys, key=lambda k: (k.split(":")[0], int(k.split(":")[1])))
    click("status")
    assert shown_rows(page)[0]["status"] == "deny"


def test_pages_of_rows_keep_a_large_table_usable(browser: Chromium, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from make_export import make_export

    export = tmp_path / "big.csv"
    make_export(20_000).to_csv(export, index=False)
    out = tmp_path / "out"
    assert run_cli("run", str(export), "--out", str(out), "--fail-on", "never").returncode == 0
    n = len(read_findings(out))
    browser.events.clear()
    browser.open((out / "report.html").as_uri())
    assert browser.errors() == []
    assert len(shown_rows(browser)) == 100
    assert browser.evaluate("document.getElementById('page').textContent") == f"page 1 of {-(-n // 100)}"
    browser.evaluate("document.getElementById('last').click()")
    assert len(shown_rows(browser)) == n - (n - 1) // 100 * 100
    elapsed = browser.evaluate("""(() => { const t = performance.now();
        document.querySelector('#findings th[data-col=message] button').click();
        return performance.now() - t; })()""")
    assert elapsed < 5000  # sorting every finding by message, then drawing one page


def test_values_from_the_export_are_shown_as_text_and_never_run(browser: Chromium, baseline: dict,
                                                                  tmp_path: Path) -> None:
    evil = {
        "claim_id": '<img src=x onerror="window.pwned=1">',
        "payer_id": "</script><script>window.pwned=2</script>",
        "curriculum_id": "",
    }
    export = write_csv(tmp_path / "evil.csv", [{**baseline, **evil}])
    out = tmp_path / "out"
    assert run_cli("run", str(export), "--out", str(out), "--fail-on", "never").returncode == 0
    browser.events.clear()
    browser.open((out / "report.html").as_uri())
    assert browser.evaluate("window.pwned === undefined") is True
    assert browser.evaluate("document.querySelectorAll('#findings img, #findings script').length") == 0
    row = shown_rows(browser)[0]
    assert row["key"] == evil["claim_id"] + ":1"
    assert browser.evaluate("document.querySelector('#findings tbody td.payer .sub').textContent") == evil["payer_id"].upper()  # read upper-cased
    assert browser.errors() == []
