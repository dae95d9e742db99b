"""The `scrubber` command line: `run` and the `rules` commands.

Exit codes (claims contract §4): 0 nothing at or above --fail-on; 1 findings at or above it;
2 bad rules, bad arguments, unreadable input or an internal error, with a one-line reason on
stderr and no output files. Nothing here prints a cell value: only counts, files, rule ids.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import BrokenExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from scrubber import __version__
from scrubber.errors import RuleConfigError, ScrubberError
from scrubber.exit_codes import ExitCode


def _fail(message: str) -> None:
    click.echo(f"scrubber: error: {message}", err=True)
    sys.exit(ExitCode.ERROR)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error into exit 2 with a reason that carries no cell values."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RuleConfigError as exc:
            click.echo(str(exc), err=True)
            _fail(str(exc.args[0]))
        except ScrubberError as exc:
            _fail(str(exc))
        except MemoryError:
            _fail("out of memory; use a smaller --chunk-lines or fewer --workers")
        except BrokenExecutor:  # a worker process was killed: by the kernel when memory ran out, or by hand
            _fail("a worker process was killed (out of memory?); nothing was written; "
                  "use a smaller --chunk-lines or fewer --workers")
        except BrokenPipeError:  # `scrubber rules list | head`: the reader left, nothing is wrong
            sys.stderr.close()
            sys.exit(ExitCode.OK)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # an internal error: report where, never the data involved
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            if os.environ.get("SCRUBBER_DEBUG") == "1":  # may print data: for developers only
                traceback.print_exc()
            _fail(f"internal error ({exc.__class__.__name__} at {where}); please report it")

    return wrapper


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click 8.2+


class _OneLineErrors(click.Group):
    """Click prints a usage error as several lines (usage, hint, error); the contract gives exit 2
    with a one-line reason on stderr, which pipelines show as is."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except _NO_ARGS_IS_HELP as exc:  # `scrubber` or `scrubber rules` alone: the help, as click shows it
            click.echo(exc.format_message(), err=True)
            sys.exit(ExitCode.ERROR)
        except click.ClickException as exc:
            click.echo(f"scrubber: error: {exc.format_message()}", err=True)
            sys.exit(ExitCode.ERROR)
        except click.Abort:  # Ctrl-C at a prompt
            sys.exit(ExitCode.ERROR)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scrubber")
def main() -> None:
    """Check claim lines against declarative denial rules before they go to a clearinghouse."""


def _rules_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--no-bundled-rules", is_flag=True,
        help="Use only the --rules folders, not the bundled pack beneath them.",
    )(fn)
    return click.option(
        "--rules", "rules_dirs", multiple=True, type=click.Path(path_type=Path),
        help="A rules folder layered over the bundled pack: its rules add to it, replace a rule of "
             "the same id, or disable one (`{id: X, disabled: true}`); its data files replace or "
             "extend the bundled ones. Repeat to layer several.",
    )(fn)


def rule_dirs(rules_dirs: tuple[Path, ...] | list[Path], no_bundled: bool = False) -> list[Path]:
    """The folders to load, bundled pack first: later folders override earlier ones."""
    from scrubber.loader import BUNDLED_RULES

    if no_bundled:
        if not rules_dirs:
            raise ScrubberError("--no-bundled-rules needs a rules folder of your own to load instead")
        return list(rules_dirs)
    return [BUNDLED_RULES, *rules_dirs]


def _load(dirs: list[Path], select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()):
    from scrubber.loader import load_pack

    return load_pack(dirs, _split(select), _split(ignore))


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@_rules_option
@click.option("--mapping", type=click.Path(path_type=Path), help='Column mapping YAML: canonical_name: "Export Header".')
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True,
              help="Format of the annotated file.")
@click.option("--fail-on", type=click.Choice(["deny", "at-risk", "never"]), default="deny", show_default=True,
              help="Exit 1 when a finding is at or above this severity.")
@click.option("--select", multiple=True, help="Only these rule ids or causes (comma-separated or repeated).")
@click.option("--ignore", multiple=True, help="Skip these rule ids or causes (comma-separated or repeated).")
@click.option("--run-date", type=click.DateTime(["%Y-%m-%d"]), help="Date used when submission_date is empty (default: today).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: the cores available). "
              "Output is identical whatever the number.")
@click.option("--chunk-lines", type=click.IntRange(10), default=100_000, show_default=True,
              help="An export with more lines is streamed in pieces of this many: memory grows with it, "
                   "output is identical whatever it is.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where the lines are scrubbed: this machine, or a Dask cluster (pip install 'scrubber[dask]').")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 "
              "(--engine dask; default: a local cluster on this machine's cores).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors (no summary line, no progress).")
@guarded
def run(inputs: tuple[Path, ...], out_dir: Path, rules_dirs: tuple[Path, ...], no_bundled_rules: bool,
        mapping: Path | None, fmt: str, fail_on: str, select: tuple[str, ...], ignore: tuple[str, ...],
        run_date: datetime | None, workers: int | None, chunk_lines: int, engine: str, scheduler: str | None, quiet: bool) -> None:
    """Scrub claim exports (CSV, CSV.GZ, Parquet, JSON Lines) into an annotated output folder."""
    from scrubber.pipeline import run_scrub
    from scrubber.scrub import default_workers

    try:
        report = run_scrub(
            inputs=list(inputs), out=out_dir, rules_dirs=rule_dirs(rules_dirs, no_bundled_rules), mapping=mapping,
            fmt=fmt, fail_on=fail_on, select=_split(select), ignore=_split(ignore),
            run_date=run_date.date() if run_date else date.today(), workers=workers or default_workers(),
            show_progress=not quiet and sys.stderr.isatty(), engine=engine, scheduler=scheduler,
            chunk_lines=chunk_lines,
        )
    except RuleConfigError as exc:  # a pipeline gets one line; `rules check` is where a rule author reads them all
        first, more = exc.problems[0], len(exc.problems) - 1
        others = f" (and {more} more)" if more else ""
        raise ScrubberError(f"{exc.args[0]}: {first.path}:{first.line}:{first.col}: {first.message}{others}; "
                            "`scrubber rules check` lists every one") from None
    if not quiet:
        click.echo(f"{report} -> {out_dir}")
    sys.exit(report.exit_code)


# -- rules ----------------------------------------------------------------------------------------
@main.group()
def rules() -> None:
    """List, explain, check and test the rule pack (no Python needed to change rules)."""


@rules.command("list")
@_rules_option
@click.option("--cause", multiple=True, help="Only rules of these causes.")
@guarded
def rules_list(rules_dirs: tuple[Path, ...], no_bundled_rules: bool, cause: tuple[str, ...]) -> None:
    """One line per rule: id, cause, severity, status, payer types, source count."""
    from scrubber.fields import CAUSES
    from scrubber.loader import did_you_mean

    pack = _load(rule_dirs(rules_dirs, no_bundled_rules))
    wanted = set(_split(cause))
    unknown = sorted(wanted - set(CAUSES))
    if unknown:  # a typo would list "0 rules" and look like an answer
        raise ScrubberError(f"--cause '{unknown[0]}' is not a cause{did_you_mean(unknown[0], CAUSES)}; "
                            f"expected one of: {', '.join(CAUSES)}")
    rows = [r for r in pack.rules if not wanted or r.cause in wanted]
    header = ("ID", "CAUSE", "SEVERITY", "DENIAL", "STATUS", "PAYERS", "SOURCES")
    table = [header] + [
        (r.id, r.cause, _severity_text(r), r.denial_code, r.status, _payers_text(r), str(len(r.sources)))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"{len(rows)} rule{'s' if len(rows) != 1 else ''}")


def _severity_text(rule: Any) -> str:
    overrides = ",".join(f"{k}={v}" for k, v in sorted(rule.severity_by_payer_type.items()))
    return rule.severity + (f" ({overrides})" if overrides else "")


def _payers_text(rule: Any) -> str:
    """The payer types a rule names in its condition, or 'all'."""
    from scrubber.model import All, AnyOf, Leaf, Not

    found: set[str] = set()

    def walk(cond: Any) -> None:
        if isinstance(cond, Leaf):
            if cond.field == "payer_type" and cond.op.value in ("eq", "in"):
                found.update([cond.value] if isinstance(cond.value, str) else cond.value)
        elif isinstance(cond, Not):
            return  # a negated payer test narrows nothing we can name
        elif isinstance(cond, All | AnyOf):
            for child in cond.children:
                walk(child)

    walk(rule.when)
    return ",".join(sorted(found)) or "all"


@rules.command("explain")
@click.argument("rule_id")
@_rules_option
@guarded
def rules_explain(rule_id: str, rules_dirs: tuple[Path, ...], no_bundled_rules: bool) -> None:
    """What a rule checks, why payers deny it, the fix, its sources, examples and the data it reads."""
    from scrubber.derive import DERIVED, FAMILIES
    from scrubber.loader import did_you_mean
    from scrubber.model import describe

    pack = _load(rule_dirs(rules_dirs, no_bundled_rules))
    rule = pack.by_id().get(rule_id.upper())
    if rule is None:
        _fail(f"no rule '{rule_id}'{did_you_mean(rule_id.upper(), pack.by_id())}; see `scrubber rules list`")
        return
    out = [
        f"{rule.id} ({rule.name}) - {rule.summary}",
        f"  cause {rule.cause}; severity {_severity_text(rule)}; expected denial {rule.denial_code}"
        + (f" + {rule.rarc}" if rule.rarc else "") + f"; status {rule.status}; file {rule.path}",
    ]
    if rule.effective_from or rule.effective_to:
        out.append(f"  applies to service dates {rule.effective_from or 'any'} to {rule.effective_to or 'any'}")
    out += ["", "What it checks (fires when):", describe(rule.when, "  "), "", "Message:", f"  {rule.message}",
            "", "Fix:", f"  {rule.fix}"]
    if rule.rationale:
        out += ["", "Why payers deny it:", *[f"  {line}" for line in rule.rationale.splitlines()]]
    out += ["", "Sources:", *[f"  - {src.title}" + (f" <{src.url}>" if src.url else "") for src in rule.sources]]
    if rule.unverified:
        out += ["", "UNVERIFIED (configurable defaults to confirm with your payers):",
                *[f"  - {u}" for u in rule.unverified]]
    families = sorted({DERIVED[f].family for f in rule.fields() if f in DERIVED})
    inputs = sorted(f for f in rule.fields() if f not in DERIVED)
    out += ["", "Data it reads:", f"  input columns: {', '.join(inputs) or 'none directly'}"]
    for name in families:
        if name in FAMILIES:
            fam = FAMILIES[name]
            used = sorted(f.name for f in fam.fields if f.name in rule.fields())
            data = f"; reference data: {', '.join(fam.data)}" if fam.data else ""
            out.append(f"  {', '.join(used)} <- computed from {', '.join(fam.reads)}{data}")
        else:
            out.append(f"  {', '.join(sorted(f for f in rule.fields() if DERIVED.get(f) and DERIVED[f].family == name))}"
                       " <- filled by the reader from unreadable or empty cells")
    out += ["", "Examples:"]
    for ex in rule.examples:
        kind = ("todo, expected to " + ex.expect) if ex.todo else ex.expect
        lines = "; ".join(", ".join(f"{k}={v!r}" for k, v in line.items()) or "the baseline line" for line in ex.lines)
        table = "".join(f"; with the MUE of {cpt} = {mue} (indicator {mai})" for cpt, mue, mai in ex.mue_table)
        out.append(f"  [{kind}] {ex.title}: {lines}{table}")
    click.echo("\n".join(out))


@rules.command("fields")
def rules_fields() -> None:
    """Every field a rule may test: the contract's columns and the derived fields, with their types."""
    from scrubber.derive import DERIVED, export_columns_behind
    from scrubber.fields import COLUMNS_BY_NAME, PHI_COLUMNS

    click.echo("Input columns (claims contract; patient_id is PHI and cannot be read by rules):")
    for name, column in COLUMNS_BY_NAME.items():
        if name not in PHI_COLUMNS:
            click.echo(f"  {name:34s} {column.type:6s} {column.description}")
    click.echo("\nDerived fields (computed before the rules run):")
    for name, spec in DERIVED.items():
        behind = export_columns_behind(name)  # what a rule reading it depends on (unreadable values)
        source = f" [from {', '.join(behind)}]" if behind else ""
        click.echo(f"  {name:34s} {spec.type:6s} {spec.description}{source}")


@rules.command("check")
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--no-bundled-rules", is_flag=True, help="Check only the given folders, not layered over the bundled pack.")
@guarded
def rules_check(dirs: tuple[Path, ...], no_bundled_rules: bool) -> None:
    """Validate rule files and data tables; every problem as path:line:col; exit 2 on any."""
    from scrubber import engine
    from scrubber.errors import ConfigProblem, RuleConfigError
    from scrubber.scrub import compiled_rule
    from scrubber.selftest import baseline_problems

    pack = _load(rule_dirs(dirs, no_bundled_rules))
    problems: list[ConfigProblem] = []
    for rule in pack.rules:
        complaint = engine.check_ruleset(compiled_rule(pack, rule))
        if complaint:
            problems.append(ConfigProblem(rule.path, 1, 1, complaint))
    problems.extend(baseline_problems(pack))
    if problems:
        raise RuleConfigError(problems)
    click.echo(f"{len(pack.rules)} rules and their data are valid ({', '.join(str(d) for d in pack.dirs)})")


@rules.command("test")
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--no-bundled-rules", is_flag=True, help="Test only the given folders' rules.")
@click.option("--select", multiple=True, help="Only these rule ids or causes.")
@click.option("-v", "--verbose", is_flag=True, help="List every example, not only failures.")
@guarded
def rules_test(dirs: tuple[Path, ...], no_bundled_rules: bool, select: tuple[str, ...], verbose: bool) -> None:
    """Run every rule's examples; exit 1 if any example does not behave as it says."""
    from scrubber.selftest import run_examples

    pack = _load(rule_dirs(dirs, no_bundled_rules), select)
    outcomes = run_examples(pack)
    failed = [o for o in outcomes if not o.passed]
    for outcome in outcomes:
        if verbose or not outcome.passed:
            where = outcome.example.where
            place = f"{where.path}:{where.line}:{where.col}: " if where else ""
            click.echo(f"{place}{'ok' if outcome.passed else 'FAIL'} {outcome.label}: {outcome.detail}")
    todo = sum(o.example.todo for o in outcomes)
    click.echo(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed"
               + (f" ({todo} todo examples still open)" if todo else "")
               + f" - {len(pack.rules)} rules")
    sys.exit(ExitCode.FINDINGS if failed else ExitCode.OK)
