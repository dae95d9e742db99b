"""Errors the command line turns into exit code 2 with a one-line reason.

Every message here is shown to users and may reach CI logs: it names files, columns, rows and rule
ids, and never a cell value from a PHI column.
"""

from __future__ import annotations

from dataclasses import dataclass


class ScrubberError(Exception):
    """A problem that stops a run: bad rules, bad arguments, an unreadable input, an engine fault."""


class InputError(ScrubberError):
    """An input file cannot be processed at all (missing, unreadable, required columns absent)."""


class EngineError(ScrubberError):
    """The rules engine returned something the scrubber cannot trust (truncated batch, error code)."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a rule or data file, located as path:line:col."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: error: {self.message}"


class RuleConfigError(ScrubberError):
    """Every problem found in the rule and data files, collected in one pass."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.col, p.message))
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the rules")

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
