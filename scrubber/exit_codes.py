"""The exit codes pipelines act on (claims contract §4)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing at or above --fail-on
    FINDINGS = 1  # at least one finding at or above --fail-on
    ERROR = 2  # bad rules, bad arguments, unreadable input or internal error; no output written
