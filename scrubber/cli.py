"""The `scrubber` command line: `run` and the `rules` commands.

Exit codes (claims contract §4): 0 nothing at or above --fail-on; 1 findings at or above it;
2 bad rules, bad arguments, unreadable input or an internal error, with a one-line reason on
stderr and no output files. Nothing here prints a cell value: only counts, files, rule ids.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import date, datetime, timezone
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
            _fail("out of memory; split the export or use smaller --chunk-size")
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # an internal error: report where, never the data involved
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            if os.environ.get("SCRUBBER_DEBUG") == "1":  # may print data: for developers only
                traceback.print_exc()
            _fail(f"internal error ({exc.__class__.__name__} at {where}); please report it")

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scrubber")
def main() -> None:
    """Check claim lines against declarative denial rules before they go to a clearinghouse."""


def _rules_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--rules", "rules_dirs", multiple=True, type=click.Path(path_type=Path),
        help="Rules folder; give it several times to layer a practice's rules over the bundled pack "
             "(later folders add, override by id, or disable). Default: the bundled pack.",
    )(fn)


def _load(rules_dirs: tuple[Path, ...], select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()):
    from scrubber.loader import BUNDLED_RULES, load_pack

    return load_pack(list(rules_dirs) or [BUNDLED_RULES], _split(select), _split(ignore))


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
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@guarded
def run(inputs: tuple[Path, ...], out_dir: Path, rules_dirs: tuple[Path, ...], mapping: Path | None, fmt: str,
        fail_on: str, select: tuple[str, ...], ignore: tuple[str, ...], run_date: datetime | None, quiet: bool) -> None:
    """Scrub claim exports (CSV, CSV.GZ, Parquet, JSON Lines) into an annotated output folder."""
    from scrubber.pipeline import run_scrub

    report = run_scrub(
        inputs=list(inputs), out=out_dir, rules_dirs=list(rules_dirs), mapping=mapping, fmt=fmt,
        fail_on=fail_on, select=_split(select), ignore=_split(ignore),
        run_date=run_date.date() if run_date else date.today(),
    )
    if not quiet:
        click.echo(f"{report} -> {out_dir}")
    sys.exit(report.exit_code)
