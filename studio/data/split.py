"""Hold out validation and test rows from one training file, reproducibly.

Stratified on the label when every class has enough rows, so small classes are not left out of
validation by chance; otherwise a plain seeded shuffle, with a note saying why. The same rows,
seed and shares always give the same split, and rows keep their file order within each split
(training shuffles anyway, and file order makes the saved splits easy to read).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from studio.data.text import is_missing
from studio.errors import DataError

HELD_OUT = ("test", "validation")
SMALL_SPLIT = 20
"""Below this many rows a held-out split gives noisy metrics: say so."""


class SplitNote(str):
    """A note on the split: its English sentence (what the command line prints, and what any
    ``str`` use sees), with ``kind`` and ``values`` for a page that words it in its own language.

    Kinds and their values: ``split`` (rows, sizes: {split: rows}, column: the stratified column
    or None, seed), ``small`` (splits: names, rows: the threshold), ``lists`` (column),
    ``rare_kept`` and ``rare_not_stratified`` (classes: [(name, count)], more: classes not
    listed), ``fewer_rows_than_classes`` (split, rows, classes), ``not_stratified`` (reason: the
    library's own English)."""

    kind: str
    values: dict[str, Any]

    def __new__(cls, text: str, kind: str, **values: Any) -> "SplitNote":
        note = super().__new__(cls, text)
        note.kind, note.values = kind, values
        return note

    def __reduce__(self):
        return (_split_note, (str(self), self.kind, self.values))


def _split_note(text: str, kind: str, values: dict[str, Any]) -> SplitNote:
    return SplitNote(text, kind, **values)


def split_frame(
    df: pd.DataFrame,
    validation: float,
    test: float,
    seed: int,
    stratify: str | None = None,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Split ``df`` into train/validation/test (a split whose share is 0 is left out).

    Returns the splits (indexes reset, in the order train, validation, test) and notes for the
    user. Raises ``DataError`` when the shares are out of range or there are too few rows to give
    every split at least one.
    """
    shares = {"validation": validation, "test": test}
    for name, share in shares.items():
        if isinstance(share, bool) or not isinstance(share, (int, float)) or math.isnan(share) or not 0 <= share < 1:
            raise DataError(f"the {name} share must be a number from 0 to less than 1, got {share!r}", hint=f"set data.split.{name}, e.g. 0.1")
    if validation + test >= 1:
        raise DataError(
            f"validation ({validation}) and test ({test}) shares add up to {validation + test:g}, leaving no rows for training",
            hint="lower data.split.validation or data.split.test",
        )
    n = len(df)
    if n == 0:
        raise DataError("the training data has no rows to split", hint="check the training file")
    held = _held_counts(n, shares)
    if n - sum(held.values()) < 1:
        needed = 1 + sum(1 for share in shares.values() if share > 0)
        wanted = " and ".join(f"{name} {shares[name]:.0%}" for name in ("validation", "test") if shares[name] > 0)
        raise DataError(
            f"the training data has {n} row(s), too few to hold out {wanted}: at least {needed} rows are needed "
            "(one or more per split)",
            hint="add rows, give separate validation/test files, or set data.split.validation and data.split.test to 0",
        )

    notes: list[str] = []
    how = "random"
    stratified_on = None
    parts = None
    if stratify is not None and any(held.values()):
        if stratify not in df.columns:
            raise DataError(
                f"cannot stratify the split on column '{stratify}': the data has no such column (columns: {', '.join(map(str, df.columns))})",
                hint="map the label role to an existing column (data.columns.label)",
            )
        keys, names, reason = _codes(df[stratify])
        if keys is not None:
            parts, stratified, reasons = _stratified(keys, names, held, seed)
            notes.extend(reasons)
            if stratified:
                how = f"stratified on '{stratify}'"
                stratified_on = stratify
        elif reason:
            notes.append(SplitNote(reason, "lists", column=str(stratify)))
    if parts is None:
        parts = _random(np.arange(n), held, seed)

    splits = {"train": df.iloc[np.sort(parts["train"])].reset_index(drop=True)}
    for name in ("validation", "test"):
        if held[name]:
            splits[name] = df.iloc[np.sort(parts[name])].reset_index(drop=True)
    if len(splits) > 1:
        sizes = ", ".join(f"{name} {len(part):,}" for name, part in splits.items())
        notes.append(SplitNote(f"split {n:,} rows into {sizes} ({how}, seed {seed})", "split", rows=n,
                               sizes={name: len(part) for name, part in splits.items()}, column=stratified_on, seed=seed))
        small = [name for name, part in splits.items() if name != "train" and len(part) < SMALL_SPLIT]
        if small:
            notes.append(SplitNote(f"the {' and '.join(small)} split(s) have fewer than {SMALL_SPLIT} rows: their metrics will be noisy",
                                   "small", splits=small, rows=SMALL_SPLIT))
    return splits, notes


def _held_counts(n: int, shares: dict[str, float]) -> dict[str, int]:
    # At least one row for any split the user asked for, so a small file still gets evaluated;
    # when rounding leaves training empty, the biggest held-out split gives rows back (never
    # below one), so any n >= the number of splits can be split.
    held = {name: (max(1, round(n * shares[name])) if shares[name] > 0 else 0) for name in HELD_OUT}
    while n - sum(held.values()) < 1:
        name = max(held, key=lambda k: held[k])
        if held[name] <= 1:
            break
        held[name] -= 1
    return held


def _codes(column: pd.Series) -> tuple[np.ndarray | None, dict[int, str], str | None]:
    """Integer class codes and their names, or None and the reason the column cannot be used."""
    values = column.tolist()
    if any(isinstance(v, (list, tuple, dict, set, np.ndarray)) for v in values):
        return None, {}, f"the labels in '{column.name}' are lists (several per row), so the split is not stratified"
    codes: dict[Any, int] = {}
    keys = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        # Codes keep sklearn away from mixed-type labels ('1' and 1) and missing values.
        key = None if is_missing(value) else (type(value).__name__, value)
        keys[i] = codes.setdefault(key, len(codes))
    if len(codes) < 2:
        return None, {}, None  # one class: a random split is the same thing, nothing to explain
    names = {code: ("(missing)" if key is None else str(key[1])) for key, code in codes.items()}
    return keys, names, None


def _stratified(keys: np.ndarray, names: dict[int, str], held: dict[str, int], seed: int) -> tuple[dict[str, np.ndarray], bool, list[str]]:
    """Split stratified on ``keys``; returns the parts, whether they are stratified, and notes.

    Rows of classes too small to appear in every split stay in train: a random split could put
    the only examples of a class where the model never learns it. The other classes are
    stratified when each held-out split can hold one row of every class, else split at random.
    """
    counts = np.bincount(keys)
    splits = 1 + sum(1 for count in held.values() if count)
    rare = [int(c) for c in np.argsort(counts, kind="stable") if counts[c] < max(2, splits)]
    notes: list[str] = []
    listed = more = ""
    classes_listed = [(names[c], int(counts[c])) for c in rare[:3]]
    more_count = max(0, len(rare) - 3)
    if rare:
        listed = ", ".join(f"class '{names[c]}' has only {counts[c]} example{'s' if counts[c] != 1 else ''}" for c in rare[:3])
        more = f" (and {len(rare) - 3} more small classes)" if len(rare) > 3 else ""
    common = np.flatnonzero(~np.isin(keys, rare))
    if len(common) < sum(held.values()):
        # Mostly tiny classes (ids or free text as labels): nothing sensible to stratify on.
        return _random(np.arange(len(keys)), held, seed), False, [
            SplitNote(f"{listed}{more}, split is not stratified", "rare_not_stratified", classes=classes_listed, more=more_count)]
    if rare:
        notes.append(SplitNote(f"{listed}{more}: kept in train only, as there are too few to stratify", "rare_kept",
                               classes=classes_listed, more=more_count))
    kept = np.flatnonzero(np.isin(keys, rare))
    classes = len(counts) - len(rare)
    small = [(name, count) for name, count in held.items() if count and count < classes]
    if classes < 2 or small:
        if small:
            name, count = small[0]
            notes.append(SplitNote(f"the {name} split ({count} rows) is smaller than the number of classes ({classes}), "
                                   "split is not stratified", "fewer_rows_than_classes", split=name, rows=count, classes=classes))
        parts = _random(common, held, seed)
        parts["train"] = np.concatenate([parts["train"], kept])
        return parts, False, notes

    from sklearn.model_selection import train_test_split  # heavy: only when stratifying

    rest = common
    parts = {}
    try:
        for name in HELD_OUT:
            if held[name]:
                rest, parts[name] = train_test_split(rest, test_size=held[name], random_state=seed % 2**32, stratify=keys[rest])
    except ValueError as err:
        # Class counts can still defeat the second cut after the first; fall back, and say why.
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        notes.append(SplitNote(f"could not stratify ({reason}), split is not stratified", "not_stratified", reason=reason))
        parts = _random(common, held, seed)
        parts["train"] = np.concatenate([parts["train"], kept])
        return parts, False, notes
    parts["train"] = np.concatenate([rest, kept])
    return parts, True, notes


def _random(rows: np.ndarray, held: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed % 2**32).permutation(rows)
    parts, start = {}, 0
    for name in HELD_OUT:
        parts[name] = order[start: start + held[name]]
        start += held[name]
    parts["train"] = order[start:]
    return parts
