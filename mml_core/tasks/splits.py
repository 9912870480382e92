"""Stratified test splits and cross-validation folds (scikit-learn does the splitting).

Shared by the importers, the demo tasks and the ``nested`` tag, so every task in mml_core is split
the same way. scikit-learn is imported inside the functions: the planner imports this package.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_test(
    ids: Sequence[str], labels: Sequence[int] | None, test_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """``(train ids, test ids)``: a ``test_fraction`` of ``ids`` is held out for testing, stratified by
    ``labels`` unless they are ``None``.

    Raises ``ValueError`` (scikit-learn's message) where a class has fewer than two samples or the
    test split is smaller than the number of classes.
    """
    if test_fraction == 0:
        return list(ids), []
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        list(ids), test_size=test_fraction, stratify=None if labels is None else list(labels),
        random_state=seed,
    )
    return list(train), list(test)


def make_folds(ids: Sequence[str], labels: Sequence[int] | None, n_folds: int, seed: int) -> list[list[str]]:
    """``n_folds`` disjoint folds covering ``ids``; stratified by ``labels`` unless they are ``None``.

    Each fold keeps the order of ``ids``. Raises ``ValueError`` (scikit-learn's message) where
    there are fewer samples than folds.
    """
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    ids = list(ids)
    if labels is None:
        splits = KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(ids)
    else:
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(
            np.zeros(len(ids)), labels
        )
    return [[ids[i] for i in sorted(val)] for _, val in splits]
