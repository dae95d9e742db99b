"""Grouping lines by the values they hold in a few columns, for work done once per distinct combination."""

from __future__ import annotations

import numpy as np
import pandas as pd


def distinct_rows(columns: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Group lines by their values in `columns` (factorize codes, -1 = missing, and the number of
    distinct values): (group index per line, first line of each group)."""
    n = len(columns[0][0]) if columns else 0
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for codes, count in columns:
        radix = count + 1
        if span * radix >= 2**62:  # keep the mixed-radix key inside int64
            key = pd.factorize(key)[0].astype(np.int64)
            span = int(key.max()) + 1
        key = key * radix + (codes + 1)
        span *= radix
    group_of_line, uniques = pd.factorize(key)
    first = np.full(len(uniques), n, dtype=np.int64)
    np.minimum.at(first, group_of_line, np.arange(n, dtype=np.int64))
    return group_of_line, first
