"""ACTINN's cell-type accuracy and F1 per dataset (Heydari et al. 2022, Supp. Tables S6-S7), part of the realism
experiment: the classifier ACTIVA conditions on, trained on a balanced split's real training cells and scored on
its real test cells; beside it, ACTIVA's own trained conditioner on the same test cells when ACTIVA is a realism
model. Rules in ``rules/classification.smk`` (``realism.actinn_tables``); results under
``results/realism/<dataset>/actinn/``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scsynth_core import atomic
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.runtime import set_threads
from scsynth_core.steps import load_prepared

log = logging.getLogger("scsynth")

#: The scores of one classifier on one split, in the order of the tables.
SCORES = ("accuracy", "macro_f1", "weighted_f1")


def actinn_classification(
    *,
    prepared: str | Path,
    split: str | Path,
    scores: str | Path,
    per_type: str | Path,
    model: str | Path | None = None,
    activa: str | Path | None = None,
    dataset: str = "",
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
    label_key: str = "cluster",
) -> None:
    """Train ACTINN (:class:`~scsynth_core.models.actinn.ACTINN`, ``preset`` with ``params``) on the ``train``
    cells of ``split`` and score it on the ``test`` cells (Heydari 2022 Supp. Tables S6-S7; the labels are
    ``obs[label_key]``, the clusters every realism model is trained on).

    ``activa``: a trained ACTIVA model file of the same split, whose conditioner is scored on the same cells as a
    second row (``activa_conditioner``). ``scores``: one row per classifier (dataset, seed, classifier, numbers of
    training and test cells, accuracy, macro- and weighted-F1, :mod:`scsynth_core.metrics.classification`);
    ``per_type``: precision, recall, F1 and support of every type; ``model``: the trained ACTINN.
    """
    import pandas as pd

    from scsynth_core.metrics.classification import classification_scores, per_type_scores
    from scsynth_core.models.actinn import ACTINN

    set_threads(threads)
    train = load_prepared(prepared, split, subset="train")
    test = load_prepared(prepared, split, subset="test")
    classifiers = {
        "actinn": ACTINN(preset, **dict(params or {})).fit(
            train, label_key=label_key, seed=seed, device=device, progress=False
        )
    }
    if activa is not None:
        classifiers["activa_conditioner"] = _conditioner(activa, device)
    truth = test.obs[label_key].astype(str).to_numpy()
    rows, types = [], []
    for name, classifier in classifiers.items():
        predicted = classifier.predict(test)
        identity = {"dataset": dataset, "seed": int(seed), "classifier": name}
        result = classification_scores(truth, predicted)
        rows.append(identity | {"n_train": train.n_obs, "n_test": result["n_cells"]} | {k: result[k] for k in SCORES})
        types.append(per_type_scores(truth, predicted).assign(**identity))
        log.info(
            "%s on %d test cells of %s: accuracy %.3f, macro-F1 %.3f, weighted-F1 %.3f",
            name,
            len(truth),
            dataset or prepared,
            *(result[k] for k in SCORES),
        )
    if model is not None:
        classifiers["actinn"].save(model)
    table = pd.concat(types, ignore_index=True)
    identity_columns = ["dataset", "seed", "classifier"]
    atomic.write_tsv(per_type, table[identity_columns + [c for c in table.columns if c not in identity_columns]])
    atomic.write_tsv(scores, pd.DataFrame(rows))


def _conditioner(path: str | Path, device: str):
    """ACTIVA's trained classifier, read from its model file."""
    from scsynth_core.models.activa import ACTIVA

    try:
        return ACTIVA.load(path, device=device).actinn
    except ConfigError as exc:  # fitted without labels: no classifier to score
        raise DataError(f"{path}: {exc}") from None


def summarise_actinn(*, inputs: Sequence[str | Path], output: str | Path) -> None:
    """One dataset's table over seeds (Supp. Tables S6-S7): per classifier the number of seeds and the mean and
    standard deviation (``ddof=1``; empty for one seed) of accuracy, macro- and weighted-F1."""
    import pandas as pd

    runs = pd.concat([pd.read_csv(path, sep="\t") for path in inputs], ignore_index=True)
    grouped = runs.groupby(["dataset", "classifier"], sort=False)
    table = grouped.agg(
        n_seeds=("seed", "nunique"),
        n_test=("n_test", "mean"),
        **{f"{k}_{stat}": (k, stat) for k in SCORES for stat in ("mean", "std")},
    )
    atomic.write_tsv(output, table.rename(columns=lambda c: c.replace("_std", "_sd")).reset_index())
