"""Array helpers for the shapes the engine meets: long runs of one value (a
THP's frames all have one head) and already-sorted indexes."""

from __future__ import annotations

import numpy as np


def squeeze_runs(a: np.ndarray) -> np.ndarray:
    """``a`` with each run of equal neighbours cut to its first element."""
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=np.bool_)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def uniq(a) -> np.ndarray:
    """``np.unique(a)`` (sorted distinct values), in linear time when ``a``
    is made of runs or is sorted already."""
    a = np.asarray(a).ravel()
    if len(a) < 2:
        return a.copy()
    a = squeeze_runs(a)
    if len(a) > 1 and not (a[1:] > a[:-1]).all():
        a = np.sort(a)
        a = squeeze_runs(a)
    return a


def uniq_counts(a) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, return_counts=True)``, in linear time for runs."""
    a = np.asarray(a).ravel()
    if len(a) == 0:
        return a.copy(), np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(a[1:] != a[:-1]) + 1))
    vals = a[starts]
    lens = np.diff(np.append(starts, len(a)))
    if len(vals) > 1 and not (vals[1:] > vals[:-1]).all():
        order = np.argsort(vals, kind="stable")
        vals, lens = vals[order], lens[order]
        st = np.concatenate(([0], np.flatnonzero(vals[1:] != vals[:-1]) + 1))
        vals, lens = vals[st], np.add.reduceat(lens, st)
    return vals, lens
