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
    if span * _DENSE_SPAN <= n:
        return _dense_groups(key, span)
    group_of_line, uniques = pd.factorize(key)
    first = np.full(len(uniques), n, dtype=np.int64)
    np.minimum.at(first, group_of_line, np.arange(n, dtype=np.int64))
    return group_of_line, first


# Keys spanning at most 1/_DENSE_SPAN of the lines (most rules' few code columns) are grouped with
# arrays indexed by key, 4x faster than hashing them; for wider spans those arrays cost more.
_DENSE_SPAN = 16


def _dense_groups(key: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """distinct_rows' grouping for keys in 0..span-1, groups numbered in order of appearance as
    pd.factorize numbers them."""
    n = len(key)
    first_of_key = np.full(span, n, dtype=np.int64)
    np.minimum.at(first_of_key, key, np.arange(n, dtype=np.int64))
    used = np.flatnonzero(first_of_key < n)
    in_order = used[np.argsort(first_of_key[used], kind="stable")]  # keys by their first line
    group_of_key = np.empty(span, dtype=np.intp)
    group_of_key[in_order] = np.arange(len(in_order))
    return group_of_key[key], first_of_key[in_order]
