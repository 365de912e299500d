"""One leaderboard over every experiment, and ranks of models on metrics that are better in different directions.

A metric is better ``"lower"`` (distances, errors: 0 is identical), ``"higher"`` (F1, recall, correlations) or
``"half"`` (0.5 is best: a real-vs-generated classifier's AUC, error or 1-NN accuracy at chance) or ``"one"`` (1 is
best: kNN density, whose expectation is 1 for identical distributions). The same words as
:data:`scsynth_core.metrics.modern.DIRECTIONS`.

:func:`build_leaderboard` joins the experiments' headline scores, each from the experiment's own summary table
(``*_scores`` functions: long tables of dataset, model, experiment, metric, direction, value), into one row per
dataset and model with a column per experiment and metric and its rank among the generators of that dataset
(models and baselines); the real control and other references (no generator) are shown unranked, and a model
an experiment did not run is NA there. :func:`write_leaderboard` is the workflow step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core import atomic
from scsynth_core.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DIRECTION_WORDS = ("lower", "higher", "half", "one")


def badness(values: pd.Series, direction: str) -> pd.Series:
    """``values`` turned into "smaller is better" for ranking and sorting."""
    if direction == "lower":
        return values
    if direction == "higher":
        return -values
    if direction == "half":
        return (values - 0.5).abs()
    if direction == "one":
        return (values - 1.0).abs()
    raise ValueError(f"unknown metric direction {direction!r} (expected one of {', '.join(DIRECTION_WORDS)})")


def is_better(a: float, b: float, direction: str) -> bool:
    """Whether value ``a`` is strictly better than ``b`` for a metric better in ``direction``."""
    scores = badness(pd.Series([a, b], dtype=float), direction)
    return bool(scores.iloc[0] < scores.iloc[1])


def rank_columns(
    values: pd.DataFrame, directions: Mapping[str, str], *, ranked: np.ndarray | pd.Series | None = None
) -> pd.DataFrame:
    """Rank of every row in each column: 1 is best, ties share the better rank, NaN where the value is missing.

    ``directions`` gives each column's direction (:data:`DIRECTION_WORDS`); ``ranked`` (a boolean per row) keeps
    reference rows, such as the real control, out of the ranking: their ranks are NaN and they push no one down.
    """
    missing = [c for c in values.columns if c not in directions]
    if missing:
        raise ValueError(
            f"rank_columns: no direction for column(s) {missing} (give each one of {', '.join(DIRECTION_WORDS)})"
        )
    keep = np.ones(len(values), dtype=bool) if ranked is None else np.asarray(ranked, dtype=bool)
    if keep.shape != (len(values),):
        raise ValueError(f"rank_columns: ranked has {keep.size} entries for {len(values)} rows")
    ranks = pd.DataFrame(np.nan, index=values.index, columns=values.columns)
    for column in values.columns:
        scores = badness(pd.to_numeric(values[column], errors="coerce"), directions[column])
        ranks.loc[keep, column] = scores[keep].rank(method="min", na_option="keep").to_numpy()
    return ranks


#: Rows that are no generator: shown for reference, never ranked (real cells scored as generated, the
#: augmentation classifier without generated cells and with resampled real cells, the unshifted perturbation
#: control).
REFERENCES = {"real_control": "control", "downsampled": "reference", "real_upsampled": "reference",
              "unshifted_control": "reference"}  # fmt: skip
#: The non-parametric baselines: ranked with the models (what a model has to beat), marked in ``role``.
BASELINES = ("upsample", "noise")
LONG_COLUMNS = ["dataset", "model", "experiment", "metric", "direction", "value"]


def role_of(model: str) -> str:
    """``model``, ``baseline``, ``control`` (the real control) or ``reference``."""
    return REFERENCES.get(model, "baseline" if model in BASELINES else "model")


def _long(frame: pd.DataFrame, experiment: str, metric: str, direction: str, value: str) -> pd.DataFrame:
    return pd.DataFrame({"dataset": frame["dataset"].astype(str).to_numpy(),
                         "model": frame["model"].astype(str).to_numpy(), "experiment": experiment,
                         "metric": metric, "direction": direction,
                         "value": pd.to_numeric(frame[value], errors="coerce").to_numpy()})  # fmt: skip


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise DataError(f"{what}: no column(s) {missing} (has: {', '.join(map(str, frame.columns))})")


def realism_scores(leaderboard: pd.DataFrame) -> pd.DataFrame:
    """RF AUC and MMD, and today's metrics where the runs have them: the means over replicates of the realism
    leaderboard (``results/realism/leaderboard.tsv``)."""
    from scsynth_core.metrics.modern import DIRECTIONS, GROUP_KEYS

    _require(leaderboard, ["dataset", "model", "rf_auc_mean_mean", "mmd_mean"], "realism leaderboard")
    columns = {"rf_auc": ("rf_auc_mean_mean", "half"), "mmd": ("mmd_mean", "lower")}
    columns |= {key: (f"{key}_mean", DIRECTIONS[key]) for keys in GROUP_KEYS.values() for key in keys}
    parts = [_long(leaderboard, "realism", metric, direction, source)
             for metric, (source, direction) in columns.items() if source in leaderboard]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def per_cluster_scores(per_cluster: pd.DataFrame) -> pd.DataFrame:
    """Per-cluster realism (Marouf 2020 Fig. 2, Heydari 2022 Fig. 5): each conditional model's real-vs-generated
    AUC averaged over its scored clusters (every cluster weighing the same, whatever its size), then over
    replicates (``results/realism/{dataset}/per_cluster.tsv``). Clusters skipped for too few cells count in no
    mean, so a model that generates too few cells of a cluster is not scored on it (the table says so)."""
    _require(per_cluster, ["dataset", "model", "replicate", "rf_auc_mean"], "per-cluster realism table")
    scored = per_cluster.assign(rf_auc_mean=pd.to_numeric(per_cluster["rf_auc_mean"], errors="coerce"))
    scored = scored[scored["rf_auc_mean"].notna()]
    if scored.empty:
        raise DataError("per-cluster realism table: no cluster was scored in any run (all had too few cells)")
    runs = scored.groupby(["dataset", "model", "replicate"], sort=False)["rf_auc_mean"].mean()
    means = runs.groupby(level=["dataset", "model"], sort=False).mean().reset_index()
    return _long(means, "realism", "rf_auc_per_cluster", "half", "rf_auc_mean")


def augmentation_scores(f1: Mapping[str, pd.DataFrame], *, n_extra: int) -> pd.DataFrame:
    """Target-vs-rest F1 at the smallest kept fraction, mean over seeds (``results/augmentation/{dataset}/f1.tsv``
    per dataset): per model augmenting with ``n_extra`` generated cells, and as references without augmentation
    (``downsampled``) and with resampled real cells (``real_upsampled``)."""
    parts = []
    for dataset, frame in f1.items():
        _require(
            frame, ["variant", "source", "comparison", "f1", "n_extra", "fraction"], f"augmentation F1 of {dataset}"
        )
        rest = frame[frame["comparison"].astype(str) == "rest"]
        smallest = rest["fraction"].min()
        at = rest[rest["fraction"] == smallest]
        augmented = at[(at["variant"] == "augmented") & (at["n_extra"] == n_extra)]
        if augmented.empty:
            raise DataError(
                f"augmentation F1 of {dataset}: no augmented rows with {n_extra} generated cells at "
                f"fraction {smallest:g} (n_extra present: {sorted(set(at['n_extra']))})"
            )
        rows = [augmented.groupby("source")["f1"].mean()]
        for variant, name in (("downsampled", "downsampled"), ("upsampled", "real_upsampled")):
            chosen = at[at["variant"] == variant]
            if variant == "upsampled":
                chosen = chosen[chosen["n_extra"] == n_extra]
            if len(chosen):
                rows.append(pd.Series({name: chosen["f1"].mean()}))
        means = pd.concat(rows).rename_axis("model").reset_index(name="f1").assign(dataset=dataset)
        parts.append(_long(means, "augmentation", f"f1@{smallest:g}", "higher", "f1"))
    return pd.concat(parts, ignore_index=True)


#: Pilot scores (Treppner 2021): DBI distance to the original data's, ARI, per-gene MADs, with directions.
PILOT_METRICS = {"dbi_gap": "lower", "ari": "higher", "mad_median": "lower", "mad_iqr": "lower", "mad_cv": "lower",
                 "mad_zero_fraction": "lower"}  # fmt: skip


def pilot_scores(replicates: pd.DataFrame) -> pd.DataFrame:
    """At the smallest pilot size, mean over seeds (``results/pilot/{dataset}/replicates.tsv``): the distance of
    the synthetic cells' Davies-Bouldin index from the original data's (``dbi_gap``; a DBI below the original's
    is no better), the ARI and the per-gene mean absolute deviations."""
    _require(replicates, ["dataset", "model", "pilot_size", "dbi_synthetic", "dbi_original", "ari", "mad_median",
                          "mad_iqr", "mad_cv", "mad_zero_fraction"], "pilot replicates")  # fmt: skip
    frame = replicates.assign(dbi_gap=(replicates["dbi_synthetic"] - replicates["dbi_original"]).abs())
    parts = []
    for _, rows in frame.groupby("dataset", sort=False):
        smallest = rows["pilot_size"].min()
        means = rows[rows["pilot_size"] == smallest].groupby(["dataset", "model"], sort=False)[list(PILOT_METRICS)]
        means = means.mean().reset_index()
        parts += [_long(means, "pilot", f"{metric}@{smallest}", direction, metric)
                  for metric, direction in PILOT_METRICS.items()]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def disentanglement_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """MIG per simulation (dataset ``splatter_<simulation>``) and model, mean over latent sizes and seeds
    (``results/disentanglement/runs.tsv``)."""
    _require(runs, ["simulation", "model", "mig"], "disentanglement runs")
    means = runs.groupby(["simulation", "model"], sort=False)["mig"].mean().reset_index()
    means["dataset"] = "splatter_" + means["simulation"].astype(str)
    return _long(means, "disentanglement", "mig", "higher", "mig")


def perturbation_scores(runs: pd.DataFrame, *, dataset: str) -> pd.DataFrame:
    """RF error of the predicted against the real held-out cells (0.5: indistinguishable), mean over held-out
    combinations and seeds, per method (``results/perturbation/runs.tsv``); the unshifted control cells are a
    reference."""
    _require(runs, ["method", "rf_error"], "perturbation runs")
    means = runs.groupby("method", sort=False)["rf_error"].mean().reset_index()
    means["model"] = means["method"].replace({"control": "unshifted_control"})
    return _long(means.assign(dataset=dataset), "perturbation", "rf_error", "half", "rf_error")


def build_leaderboard(scores: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One row per dataset and model from long score tables (:data:`LONG_COLUMNS`).

    Columns: ``dataset``, ``model``, ``role`` (:func:`role_of`), then per experiment and metric
    ``<experiment>.<metric>`` and its rank ``<experiment>.<metric>.rank`` among the dataset's models and baselines
    (1 = best in the metric's direction). Missing values are NaN: an experiment that did not run a model, or a
    reference row. Rows: by dataset, the ranked rows by their ranks in column order, then the references.
    """
    long = pd.concat(list(scores), ignore_index=True)
    _require(long, LONG_COLUMNS, "leaderboard scores")
    long["column"] = long["experiment"] + "." + long["metric"]
    directions = long.drop_duplicates("column").set_index("column")["direction"]
    clash = long.groupby("column")["direction"].nunique()
    if (clash > 1).any():
        raise DataError(f"leaderboard: metric(s) {list(clash.index[clash > 1])} given with different directions")
    repeated = long.duplicated(["dataset", "model", "column"])
    if repeated.any():
        first = long.loc[repeated, ["dataset", "model", "column"]].iloc[0].tolist()
        raise DataError(f"leaderboard: more than one score for {first} (one value per dataset, model and metric)")
    wide = long.pivot(index=["dataset", "model"], columns="column", values="value")
    wide = wide.reindex(columns=list(directions.index)).reset_index()
    wide.columns.name = None
    wide.insert(2, "role", wide["model"].map(role_of))
    ranked = wide["role"].isin(["model", "baseline"]).to_numpy()
    values = wide[list(directions.index)]
    ranks = pd.concat([rank_columns(values[rows], directions, ranked=ranked[rows])
                       for rows in (wide["dataset"] == d for d in pd.unique(wide["dataset"]))])  # fmt: skip
    ranks = ranks.loc[wide.index]
    out = wide[["dataset", "model", "role"]].copy()
    for column in directions.index:
        out[column], out[f"{column}.rank"] = wide[column], ranks[column]
    # No rank averaged over experiments: they run different models (a model alone in one is first there).
    by = ["dataset", "_reference", *(f"{c}.rank" for c in directions.index), "model"]
    order = out.assign(_reference=~ranked).sort_values(by, kind="stable", na_position="last")
    return order.drop(columns="_reference").reset_index(drop=True)


def write_leaderboard(
    *,
    output: str | Path,
    figure: str | Path | None = None,
    realism: str | Path | None = None,
    per_cluster: Sequence[str | Path] = (),
    augmentation: Sequence[str | Path] = (),
    augmentation_datasets: Sequence[str] | None = None,
    n_extra: int | None = None,
    pilot: Sequence[str | Path] = (),
    disentanglement: str | Path | None = None,
    perturbation: str | Path | None = None,
    perturbation_dataset: str = "simulated",
) -> None:
    """The workflow step: read the summary tables of the experiments that ran, write :func:`build_leaderboard`'s
    table (missing values as ``NA``) and, with ``figure``, the table drawn by rank.

    ``realism``: ``results/realism/leaderboard.tsv``; ``per_cluster``: ``results/realism/{dataset}/per_cluster.tsv``
    files (:func:`per_cluster_scores`); ``augmentation``: ``results/augmentation/{dataset}/f1.tsv``
    files with ``n_extra`` generated cells, their datasets in ``augmentation_datasets`` (same order; the workflow
    passes them) or else the files' folder names; ``pilot``: the ``replicates.tsv`` files;
    ``disentanglement`` and ``perturbation``: their ``runs.tsv``.
    """
    read = _read_tsv
    scores = []
    if realism is not None:
        scores.append(realism_scores(read(realism)))
    if per_cluster:
        scores.append(per_cluster_scores(pd.concat([read(p) for p in per_cluster], ignore_index=True)))
    if augmentation:
        if n_extra is None:
            raise DataError("leaderboard: augmentation tables need n_extra (the config's augmentation.n_generated)")
        if augmentation_datasets is None:
            augmentation_datasets = [Path(p).parent.name for p in augmentation]
        if len(augmentation_datasets) != len(augmentation):
            raise DataError(f"leaderboard: {len(augmentation)} augmentation table(s) for "
                            f"{len(augmentation_datasets)} dataset name(s) {list(augmentation_datasets)}")  # fmt: skip
        tables = {name: read(p) for name, p in zip(augmentation_datasets, augmentation, strict=True)}
        scores.append(augmentation_scores(tables, n_extra=n_extra))
    if pilot:
        scores.append(pilot_scores(pd.concat([read(p) for p in pilot], ignore_index=True)))
    if disentanglement is not None:
        scores.append(disentanglement_scores(read(disentanglement)))
    if perturbation is not None:
        scores.append(perturbation_scores(read(perturbation), dataset=perturbation_dataset))
    if not scores:
        raise DataError("leaderboard: no experiment's table given")
    table = build_leaderboard(scores)
    atomic.write_tsv(output, table.round(4).astype(object).where(table.notna(), "NA"))
    if figure is not None:
        _draw(table, figure)


def _read_tsv(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def _draw(table: pd.DataFrame, figure: str | Path) -> None:
    """Every dataset's rows in one table figure, labelled ``dataset: model``, coloured by rank."""
    import matplotlib

    matplotlib.use("Agg")
    from scsynth_core.plots.leaderboard import plot_rank_table

    columns = [c for c in table.columns if c not in ("dataset", "model", "role") and not c.endswith(".rank")]
    labels = table["dataset"] + ": " + table["model"]
    values = table[columns].set_axis(labels)
    ranks = table[[f"{c}.rank" for c in columns]].set_axis(labels).set_axis(columns, axis=1)
    fig = plot_rank_table(values, ranks, title="every experiment: rank among each dataset's generators")
    with atomic.atomic_path(figure) as tmp:
        fig.savefig(tmp, dpi=150, format="png", bbox_inches="tight")
