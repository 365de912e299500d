"""Rare-population classification with and without augmentation (Marouf 2020 Fig. 3; Heydari 2022 Fig. 6).

Protocol (Marouf 2020, Methods "Data augmentation"): one cluster (the *target*, PBMC cluster 2) is downsampled in
the training data; a random forest (1,000 trees, class weights inversely proportional to class frequencies) is
trained on the 50-PC representation and scored by the F1 of the target class on held-out real cells that no model
saw. Three training sets are compared:

* ``downsampled``: the training cells as they are;
* ``upsampled``: plus ``n_extra`` cells resampled with replacement from the kept real target cells;
* ``augmented``: plus ``n_extra`` generated target cells (cscGAN/ACTIVA trained on the downsampled data).

F1 is reported for the target vs all other clusters and, for the pairwise comparisons of the paper (2 vs 1, 2 vs 3,
2 vs 5), in two ways (column ``forest`` of :func:`augmentation_protocol`):

* ``all``: the multi-class forest of the variant, its predictions scored on the test cells of the target and one
  other cluster only (:func:`augmentation_f1`);
* ``pair``: a forest retrained on the training cells of the two clusters only (plus the added cells) and scored on
  their test cells, as Marouf 2020 Supplementary Fig. 14 compares two clusters (:func:`pairwise_f1`).

Marouf 2020 add 5,000 cells, Heydari 2022 1,500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from scsynth_core.errors import DataError

VARIANTS = ("downsampled", "upsampled", "augmented")  # in the order the protocol reports them


def _check_pcs(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"{name} must be a 2-D array of cells x components, got shape {x.shape}")
    return x


def augmentation_f1(
    train_pcs,
    train_labels,
    test_pcs,
    test_labels,
    *,
    target,
    extra_pcs=None,
    extra_label=None,
    n_trees: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    compare_with: Sequence = (),
) -> dict[str, float]:
    """Train one class-balanced random forest and score the target class on the test cells.

    Parameters
    ----------
    train_pcs, train_labels
        Training cells (shared representation) and their cluster labels.
    test_pcs, test_labels
        Held-out real cells and labels.
    target
        The (downsampled) cluster whose F1 is measured.
    extra_pcs
        Cells added to the training set (resampled real or generated target cells).
    extra_label
        Label of the extra cells (default: ``target``).
    n_trees, seed, n_jobs
        Forest size (paper 1,000), its random state, and parallel jobs passed to scikit-learn.
    compare_with
        Other clusters for pairwise F1: the test set restricted to ``target`` and that cluster.

    Returns
    -------
    dict
        ``{"rest": F1 of target vs all others, str(c): F1 of target on target + c cells, ...}``. F1 is binary for
        the target class (``sklearn.metrics.f1_score``; 0 when the target is never predicted and never present).

    Notes
    -----
    ``class_weight="balanced"`` weights each class by ``n / (n_classes * n_class)`` (Marouf: "inversely
    proportional to class frequency"); other forest settings as in the realism forest (Gini, sqrt features,
    fully grown trees).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score

    X = _check_pcs(train_pcs, "training cells")
    y = np.asarray(train_labels).astype(str)
    test_X = _check_pcs(test_pcs, "test cells")
    test_y = np.asarray(test_labels).astype(str)
    target_s = str(target)
    if len(y) != len(X) or len(test_y) != len(test_X):
        raise DataError("number of labels does not match the number of cells")
    if extra_pcs is not None and len(extra_pcs):
        extra = _check_pcs(extra_pcs, "extra cells")
        if extra.shape[1] != X.shape[1]:
            raise DataError(f"extra cells have {extra.shape[1]} components, training cells {X.shape[1]}")
        X = np.vstack([X, extra])
        y = np.r_[y, np.full(len(extra), str(target if extra_label is None else extra_label))]
    if target_s not in set(y):
        raise DataError(f"target cluster {target_s!r} has no training cells")
    if target_s not in set(test_y):
        raise DataError(f"target cluster {target_s!r} has no test cells")

    forest = RandomForestClassifier(
        n_estimators=n_trees,
        criterion="gini",
        max_features="sqrt",
        max_depth=None,
        min_samples_leaf=1,
        class_weight="balanced",
        random_state=seed,
        n_jobs=n_jobs,
    )
    # Integer class codes: scikit-learn's "balanced" weights mishandle string classes that look like numbers.
    classes, codes = np.unique(y, return_inverse=True)
    forest.fit(X, codes)
    pred = classes[forest.predict(test_X)]
    is_target, pred_target = test_y == target_s, pred == target_s
    out = {"rest": float(f1_score(is_target, pred_target, zero_division=0))}
    for other in compare_with:
        other_s = str(other)
        keep = is_target | (test_y == other_s)
        if not np.any(test_y == other_s):
            raise DataError(f"cluster {other_s!r} to compare with has no test cells")
        out[other_s] = float(f1_score(is_target[keep], pred_target[keep], zero_division=0))
    return out


def pairwise_f1(
    train_pcs,
    train_labels,
    test_pcs,
    test_labels,
    *,
    target,
    other,
    extra_pcs=None,
    n_trees: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
) -> float:
    """F1 of ``target`` from a forest trained on two clusters only (Marouf 2020 Supplementary Fig. 14).

    The training cells of ``target`` and ``other`` (plus ``extra_pcs``, labelled ``target``) train a class-balanced
    forest as in :func:`augmentation_f1`; it is scored on the test cells of the two clusters. Unlike the ``other``
    entry of :func:`augmentation_f1`, cells of a third cluster can neither attract target cells at prediction time
    nor shape the forest.
    """
    y, test_y = np.asarray(train_labels).astype(str), np.asarray(test_labels).astype(str)
    pair = [str(target), str(other)]
    if str(other) == str(target):
        raise DataError(f"pairwise F1: the other cluster must differ from the target ({target!r})")
    for cells, where in ((y, "training"), (test_y, "test")):
        if not np.any(cells == pair[1]):
            raise DataError(f"cluster {pair[1]!r} to compare with has no {where} cells")
    keep, test_keep = np.isin(y, pair), np.isin(test_y, pair)
    X, test_X = _check_pcs(train_pcs, "training cells"), _check_pcs(test_pcs, "test cells")
    if len(y) != len(X) or len(test_y) != len(test_X):
        raise DataError("number of labels does not match the number of cells")
    scores = augmentation_f1(X[keep], y[keep], test_X[test_keep], test_y[test_keep], target=target,
                             extra_pcs=extra_pcs, n_trees=n_trees, seed=seed, n_jobs=n_jobs)  # fmt: skip
    return scores["rest"]


def augmentation_protocol(
    train_pcs,
    train_labels,
    test_pcs,
    test_labels,
    *,
    target,
    generated_pcs,
    n_extra: int | None = None,
    n_trees: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    compare_with: Sequence = (),
) -> pd.DataFrame:
    """The three variants of Marouf 2020 Fig. 3 on one downsampled training set.

    Parameters
    ----------
    train_pcs, train_labels, test_pcs, test_labels, target, n_trees, seed, n_jobs, compare_with
        As in :func:`augmentation_f1` (the training set already holds the downsampled target cluster).
    generated_pcs
        Generated target cells, projected into the same representation; or ``{name: cells}`` for several
        generators (e.g. models), each giving one ``augmented`` row set while the ``downsampled`` and
        ``upsampled`` forests are trained once.
    n_extra
        Cells added in the upsampled and augmented variants (default: all generated cells). The upsampled variant
        draws them with replacement from the real target training cells; the augmented variant uses ``n_extra``
        generated cells drawn without replacement (all of them by default).

    Returns
    -------
    pandas.DataFrame
        Tidy rows ``variant`` (downsampled / upsampled / augmented), ``source`` ("real" or the generator's
        name), ``comparison`` ("rest" or the other cluster), ``forest`` ("all": the variant's forest over every
        cluster; "pair": retrained on the target and ``comparison`` only, one row per ``compare_with`` cluster,
        :func:`pairwise_f1`), ``f1``, plus ``n_extra`` and ``n_target_train`` (real target cells in training).
    """
    sets = dict(generated_pcs) if isinstance(generated_pcs, Mapping) else {"generated": generated_pcs}
    sets = {name: _check_pcs(pcs, f"generated cells ({name})") for name, pcs in sets.items()}
    train_X = _check_pcs(train_pcs, "training cells")
    labels = np.asarray(train_labels).astype(str)
    n_extra = min(len(g) for g in sets.values()) if n_extra is None else int(n_extra)
    for name, generated in sets.items():
        if n_extra > len(generated):
            raise DataError(f"n_extra = {n_extra} but only {len(generated)} generated cells were given ({name})")
    kept = train_X[labels == str(target)]
    if len(kept) == 0:
        raise DataError(f"target cluster {target!r} has no training cells to upsample")
    rng = np.random.default_rng(seed)
    # (variant, source of the extra cells, extra cells); the two real-data variants are shared by every set.
    runs = [("downsampled", "real", None), ("upsampled", "real", kept[rng.integers(0, len(kept), n_extra)])]
    runs += [("augmented", name, g[np.sort(rng.choice(len(g), n_extra, replace=False))]) for name, g in sets.items()]
    rows = []
    for variant, source, extra in runs:
        scores = augmentation_f1(
            train_X,
            labels,
            test_pcs,
            test_labels,
            target=target,
            extra_pcs=extra,
            n_trees=n_trees,
            seed=seed,
            n_jobs=n_jobs,
            compare_with=compare_with,
        )
        pairs = {
            str(other): pairwise_f1(train_X, labels, test_pcs, test_labels, target=target, other=other,
                                    extra_pcs=extra, n_trees=n_trees, seed=seed, n_jobs=n_jobs)
            for other in compare_with
        }  # fmt: skip
        for forest, results in (("all", scores), ("pair", pairs)):
            for comparison, f1 in results.items():
                rows.append(
                    {
                        "variant": variant,
                        "source": source,
                        "comparison": comparison,
                        "forest": forest,
                        "f1": f1,
                        "n_extra": 0 if extra is None else n_extra,
                        "n_target_train": len(kept),
                    }
                )
    return pd.DataFrame(rows)
