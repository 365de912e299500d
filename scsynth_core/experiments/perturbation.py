"""Steps of the ``perturbation`` experiment (Yu & Welch 2021, "MichiGAN: sampling from disentangled
representations of single-cell data using generative adversarial networks", Genome Biology 22:158; Results on
predicting single-cell perturbation responses of unseen cell type x perturbation combinations, Figs. 6-7).

One cell type x condition combination is held out of training; its codes are predicted by latent arithmetic and
decoded by MichiGAN's generator (``michigan``) and by its beta-TCVAE decoder (``betatcvae``), both scored against
the real held-out cells (RF error, PC distance, delta-H). Data, control baseline, scores, codes, Fig. 7b and
seeds: docs/experiments.md, ``perturbation`` and "Perturbation details".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from scsynth_core import atomic
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.metrics.latent import METHODS, REAL

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("scsynth")

#: Separator of a held-out combination, ``"TYPE:CONDITION"``.
SEPARATOR = ":"
#: Default factor columns: the Splatter simulation's path (cell type) and batch (condition).
CELL_TYPE_KEY = "path"
CONDITION_KEY = "batch"
#: Per-method scores of one run (the summary table gives their mean and sd over seeds).
SCORES = ("rf_error", "rf_auc", "pc_distance", "delta_h")
#: Components of the evaluation PCA (capped at ``n_cells // 5`` and ``n_genes - 1``).
N_COMPONENTS = 50
#: Folds of the real-vs-predicted random forest; each compared set needs at least this many cells.
N_FOLDS = 5
#: How Fig. 7b ranks the combinations: by mean delta-H (the paper's "lowest"), or by mean |delta-H|.
RANK_BY = ("delta_h", "abs_delta_h")


# ----------------------------------------------------------------------------------------------- the design
@dataclass(frozen=True)
class Design:
    """A validated held-out combination: ``target_type`` x ``target_condition``, predicted from ``control_type``."""

    cell_type_key: str
    condition_key: str
    target_type: str
    target_condition: str
    control_type: str

    @property
    def combination(self) -> str:
        """The combination as written in configs, ``"TYPE:CONDITION"``."""
        return f"{self.target_type}{SEPARATOR}{self.target_condition}"

    def held_out(self, obs: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the held-out combination's cells."""
        return _is(obs, self.cell_type_key, self.target_type) & _is(obs, self.condition_key, self.target_condition)

    def control(self, obs: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the control type's cells under the target condition (the cells latent arithmetic
        shifts and the ``control`` baseline)."""
        return _is(obs, self.cell_type_key, self.control_type) & _is(obs, self.condition_key, self.target_condition)


def _is(obs: pd.DataFrame, key: str, value: str) -> np.ndarray:
    return (obs[key].astype(str) == value).to_numpy()


def parse_combination(text: str) -> tuple[str, str]:
    """Split ``"TYPE:CONDITION"`` into ``(TYPE, CONDITION)``; :class:`ConfigError` when it is not of that form."""
    if not isinstance(text, str):
        raise ConfigError(f"held-out combination must be a string 'TYPE{SEPARATOR}CONDITION', got {text!r}")
    parts = text.split(SEPARATOR)
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(
            f"held-out combination '{text}' is not of the form 'TYPE{SEPARATOR}CONDITION' "
            f"(one '{SEPARATOR}' between a cell type and a condition, e.g. 'Path2{SEPARATOR}Batch1')"
        )
    return parts[0].strip(), parts[1].strip()


def check_design(
    obs: pd.DataFrame,
    combination: str,
    *,
    cell_type_key: str = CELL_TYPE_KEY,
    condition_key: str = CONDITION_KEY,
    control_type: str | None = None,
    min_cells: int = N_FOLDS,
) -> Design:
    """Check that ``combination`` (``"TYPE:CONDITION"``) can be held out and predicted from the cells ``obs``
    describes, and choose the control type.

    Raises :class:`ConfigError` for a malformed combination and :class:`DataError`, naming the column and the
    value, when a factor column is missing or has missing values, the cell type or condition does not occur, the
    combination has fewer than ``min_cells`` cells (the random forest's folds), the control type (given, or the
    default: the first other cell type, sorted, under the target condition that shares another condition with the
    target type) has fewer than ``min_cells`` cells under the target condition, or the two types share no other
    condition (latent arithmetic needs one to estimate the type difference).
    """
    target_type, target_condition = parse_combination(combination)
    for key, what in ((cell_type_key, "cell type"), (condition_key, "condition")):
        if key not in obs.columns:
            raise DataError(
                f"the {what} column obs['{key}'] does not exist (available: "
                f"{', '.join(map(str, obs.columns)) or 'none'})"
            )
        n_missing = int(obs[key].isna().sum())
        if n_missing:
            raise DataError(f"the {what} column obs['{key}'] has {n_missing} missing values")
    types = obs[cell_type_key].astype(str).to_numpy()
    conditions = obs[condition_key].astype(str).to_numpy()
    known_types, known_conditions = sorted(set(types)), sorted(set(conditions))
    if target_type not in known_types:
        raise DataError(
            f"held-out combination '{combination}': cell type '{target_type}' does not occur in "
            f"obs['{cell_type_key}'] (values: {', '.join(known_types)})"
        )
    if target_condition not in known_conditions:
        raise DataError(
            f"held-out combination '{combination}': condition '{target_condition}' does not occur in "
            f"obs['{condition_key}'] (values: {', '.join(known_conditions)})"
        )

    def n_cells(cell_type: str, condition: str) -> int:
        return int(((types == cell_type) & (conditions == condition)).sum())

    n_held = n_cells(target_type, target_condition)
    if n_held < min_cells:
        raise DataError(
            f"held-out combination '{combination}' has {n_held} cells (obs['{cell_type_key}'] == "
            f"'{target_type}' and obs['{condition_key}'] == '{target_condition}'); at least "
            f"{min_cells} are needed to score predictions"
        )

    def shared(cell_type: str) -> list[str]:
        return [
            c
            for c in known_conditions
            if c != target_condition and n_cells(cell_type, c) > 0 and n_cells(target_type, c) > 0
        ]

    if control_type is None:
        candidates = [
            t for t in known_types if t != target_type and n_cells(t, target_condition) >= min_cells and shared(t)
        ]
        if not candidates:
            raise DataError(
                f"held-out combination '{combination}': no other cell type of obs['{cell_type_key}'] "
                f"has at least {min_cells} cells under obs['{condition_key}'] == '{target_condition}' "
                f"and shares another condition with '{target_type}': there is nothing to shift"
            )
        control_type = candidates[0]
    else:
        control_type = str(control_type)
        if control_type == target_type:
            raise DataError(
                f"held-out combination '{combination}': the control type must differ from the "
                f"target type '{target_type}'"
            )
        if control_type not in known_types:
            raise DataError(
                f"control type '{control_type}' does not occur in obs['{cell_type_key}'] "
                f"(values: {', '.join(known_types)})"
            )
        n_control = n_cells(control_type, target_condition)
        if n_control < min_cells:
            raise DataError(
                f"control type '{control_type}' has {n_control} cells under obs['{condition_key}'] == "
                f"'{target_condition}' (at least {min_cells} needed: latent arithmetic shifts them)"
            )
        if not shared(control_type):
            raise DataError(
                f"cell types '{control_type}' and '{target_type}' share no condition of "
                f"obs['{condition_key}'] besides '{target_condition}': the type difference cannot "
                "be estimated"
            )
    return Design(cell_type_key, condition_key, target_type, target_condition, control_type)


# ------------------------------------------------------------------------------------------------- the data
def simulate(
    *,
    output: str | Path,
    seed: int,
    n_cells: int = 3000,
    n_genes: int = 1000,
    n_batches: int = 3,
    n_paths: int = 3,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Write the default dataset: a Splatter simulation whose paths are the cell types and whose batches are the
    conditions (``params``: further :class:`~scsynth_core.data.simulate.SplatterParams` fields)."""
    from scsynth_core.data.simulate import simulate_splatter

    adata = simulate_splatter(
        seed=seed, n_cells=n_cells, n_genes=n_genes, n_batches=n_batches, n_paths=n_paths, **dict(params or {})
    )
    atomic.write_h5ad(output, adata)
    log.info(
        "simulated %d cells x %d genes (%d paths x %d batches, seed %d)",
        adata.n_obs,
        adata.n_vars,
        n_paths,
        n_batches,
        seed,
    )


def _log1p(X) -> sp.csr_matrix:
    """Raw counts -> ``log1p`` values (CSR float32), the space MichiGAN generates in."""
    from scsynth_core.data.preprocess import to_representation

    return sp.csr_matrix(to_representation(sp.csr_matrix(X), "log1p"), dtype=np.float32)


# ----------------------------------------------------------------------------------------------- one run
def encode_pair(model, train, real, *, sample: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The codes latent arithmetic and delta-H use: of the training cells and of the real held-out cells.

    ``sample=False``: posterior means (MichiGAN_mean). ``sample=True``: one posterior draw per cell, the kind of
    code MichiGAN_sample's generator was trained on (Yu & Welch 2021, Methods; reference
    ``MichiGAN_sample.py``); the two sets draw from independent streams of ``seed``, so a cell in both sets
    does not get the same noise twice.
    """
    if not sample:
        return model.encode(train), model.encode(real)
    train_seed, real_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    return model.encode(train, sample=True, seed=train_seed), model.encode(real, sample=True, seed=real_seed)


def _score(real_pcs: np.ndarray, pred_pcs: np.ndarray, *, n_trees: int, seed: int, n_jobs: int) -> dict[str, float]:
    from scsynth_core.metrics.realism import rf_real_vs_generated

    rf = rf_real_vs_generated(real_pcs, pred_pcs, n_trees=n_trees, n_folds=N_FOLDS, seed=seed, n_jobs=n_jobs)
    distance = float(np.linalg.norm(pred_pcs.mean(axis=0) - real_pcs.mean(axis=0)))
    return {"rf_error": rf.error, "rf_auc": rf.auc_mean, "pc_distance": distance, "n_cells": len(pred_pcs)}


def train_and_predict(
    *,
    data: str | Path,
    combination: str,
    seed: int,
    metrics: str | Path,
    cells: str | Path,
    train_log: str | Path | None = None,
    model_output: str | Path | None = None,
    cell_type_key: str = CELL_TYPE_KEY,
    condition_key: str = CONDITION_KEY,
    control_type: str | None = None,
    balance: str = "mean",
    codes: str | None = None,
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    n_trees: int = 1000,
    n_components: int = N_COMPONENTS,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Hold out ``combination`` (``"TYPE:CONDITION"``), train MichiGAN on the other cells of ``data`` (an h5ad of
    raw counts), predict the held-out cells by latent arithmetic and score the predictions against them.

    ``params``: MichiGAN hyperparameters over ``preset`` (``"paper"`` or ``"demo"``), the beta-TCVAE's under a
    ``"vae"`` key; ``max_steps`` caps the GAN's generator steps (the beta-TCVAE runs its epochs). ``balance``:
    latent arithmetic's weighting of the shared conditions (``"mean"`` or ``"resample"``). ``codes``: MichiGAN's
    code mode, ``"mean"`` (MichiGAN_mean) or ``"sample"`` (MichiGAN_sample, the paper's choice for Figs. 6c-7);
    it sets the hyperparameter ``codes`` (``None``: ``params``' or the preset's) and how the cells are encoded
    for latent arithmetic and delta-H (:func:`encode_pair`). ``n_trees``: trees of each random forest (paper: 1,000). ``threads``: torch/BLAS threads and the forests' jobs.

    Outputs: ``metrics`` (JSON: the combination, seed, control type, cell counts, per-method scores, delta-H,
    improvement, seconds), ``cells`` (h5ad: ``log1p`` values of the predicted cells of every method and of the
    real held-out cells, ``obs["method"]``; ``obsm["X_codes"]`` the codes they come from, ``obsm["X_pca"]`` the
    evaluation PCs) and optionally ``train_log`` (TSV of the training history) and ``model_output`` (the trained
    MichiGAN, :meth:`~scsynth_core.models.base.GenerativeModel.save`). Returns the metrics record.
    """
    import anndata as ad
    import pandas as pd

    from scsynth_core.data.checks import check_counts, read_h5ad
    from scsynth_core.metrics.latent import delta_h, latent_arithmetic
    from scsynth_core.metrics.representation import fit_representation
    from scsynth_core.models.michigan import MichiGAN
    from scsynth_core.models.training import history_frame
    from scsynth_core.runtime import set_threads

    if balance not in ("mean", "resample"):
        raise ConfigError(f"balance must be 'mean' or 'resample', got {balance!r}")
    params = dict(params or {})
    if codes is not None:
        if params.get("codes", codes) != codes:
            raise ConfigError(
                f"perturbation codes '{codes}' contradicts MichiGAN's params codes "
                f"'{params['codes']}' (models.michigan.params.codes): set one of them"
            )
        params["codes"] = codes
    set_threads(threads)
    model = MichiGAN(preset, **params)  # checks the settings before reading data
    adata = read_h5ad(data)
    check_counts(adata.X, where=f"{data} (X)")
    design = check_design(
        adata.obs, combination, cell_type_key=cell_type_key, condition_key=condition_key, control_type=control_type
    )
    held = design.held_out(adata.obs)
    train = adata[~held].copy()
    real = adata[held].copy()

    t0 = time.perf_counter()
    history = model.fit(train, seed=seed, device=device, max_steps=max_steps, progress=progress)
    train_seconds = time.perf_counter() - t0
    log.info(
        "trained MichiGAN on %d cells without %s (%d cells) in %.1f s",
        model.n_train,
        design.combination,
        real.n_obs,
        train_seconds,
    )

    t1 = time.perf_counter()
    z_train, z_real = encode_pair(model, train, real, sample=model.params["codes"] == "sample", seed=seed)
    is_control = design.control(train.obs)
    z_control = z_train[is_control]
    z_pred = latent_arithmetic(
        z_train,
        train.obs[cell_type_key].astype(str),
        train.obs[condition_key].astype(str),
        control_type=design.control_type,
        target_condition=design.target_condition,
        target_type=design.target_type,
        balance=balance,
        seed=seed,
    ).astype(np.float32)
    control = train[is_control]
    sets = {
        "michigan": (sp.csr_matrix(model.generate_from_codes(z_pred, seed=seed).X, dtype=np.float32), z_pred),
        "betatcvae": (sp.csr_matrix(model.vae.generate_from_codes(z_pred, seed=seed).X, dtype=np.float32), z_pred),
        "control": (_log1p(control.X), z_control),
    }
    real_log = _log1p(real.X)
    pca = fit_representation(adata, n_components=n_components, seed=0)
    real_pcs = pca.project_log1p(real_log)
    n_jobs = int(threads) if threads else 1
    methods: dict[str, dict[str, float]] = {}
    pcs = {}
    for method, (values, z) in sets.items():
        pcs[method] = pca.project_log1p(values)
        methods[method] = _score(real_pcs, pcs[method], n_trees=n_trees, seed=seed, n_jobs=n_jobs) | {
            "delta_h": delta_h(z, z_real),
            "code_distance": float(np.linalg.norm(z.mean(axis=0) - z_real.mean(axis=0))),
        }
    record = {
        "combination": design.combination,
        "cell_type": design.target_type,
        "condition": design.target_condition,
        "cell_type_key": cell_type_key,
        "condition_key": condition_key,
        "control_type": design.control_type,
        "seed": int(seed),
        "balance": balance,
        "codes": model.params["codes"],
        "preset": preset,
        "max_steps": max_steps,
        "n_cells": int(adata.n_obs),
        "n_train": int(model.n_train),
        "n_held_out": int(real.n_obs),
        "n_control": int(control.n_obs),
        "n_components": pca.n_components,
        "n_trees": int(n_trees),
        "methods": methods,
        "delta_h": methods["michigan"]["delta_h"],
        "improvement": methods["michigan"]["rf_error"] - methods["betatcvae"]["rf_error"],
        "train_seconds": round(train_seconds, 3),
        "score_seconds": round(time.perf_counter() - t1, 3),
    }

    # The predicted cells of every method and the real held-out cells, for the UMAP figure.
    names = list(sets) + [REAL]
    blocks = [sets[m][0] for m in sets] + [real_log]
    sources = [control.obs_names] * 3 + [real.obs_names]
    obs = pd.DataFrame(
        {
            "method": pd.Categorical(np.repeat(names, [b.shape[0] for b in blocks]), categories=names),
            "cell": np.concatenate([np.asarray(s, dtype=str) for s in sources]),
        }
    )
    obs.index = [f"{m}_{i}" for m, b in zip(names, blocks) for i in range(b.shape[0])]
    kept = ad.AnnData(X=sp.vstack(blocks, format="csr"), obs=obs, var=pd.DataFrame(index=adata.var_names.copy()))
    kept.obsm["X_codes"] = np.vstack([sets[m][1] for m in sets] + [z_real]).astype(np.float32)
    kept.obsm["X_pca"] = np.vstack([pcs[m] for m in sets] + [real_pcs]).astype(np.float32)
    kept.uns["perturbation"] = {
        k: record[k]
        for k in ("combination", "cell_type", "condition", "cell_type_key", "condition_key", "control_type", "seed")
    }
    atomic.write_h5ad(cells, kept)
    if train_log is not None:
        atomic.write_tsv(train_log, history_frame(history))
    if model_output is not None:
        model.save(model_output)
    atomic.write_json(metrics, record)
    log.info(
        "%s (seed %d, control %s): RF error michigan %.3f, betatcvae %.3f, control %.3f; delta-H %.3f",
        design.combination,
        seed,
        design.control_type,
        methods["michigan"]["rf_error"],
        methods["betatcvae"]["rf_error"],
        methods["control"]["rf_error"],
        record["delta_h"],
    )
    return record


# ------------------------------------------------------------------------------------------------- summary
def read_records(inputs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The run records (:func:`train_and_predict`'s metrics files) ``inputs``; :class:`DataError` naming the file
    when one is not readable JSON, or when there are none."""
    import json

    records = []
    for path in inputs:
        try:
            records.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable metrics file ({type(exc).__name__}: {exc})") from None
    if not records:
        raise DataError("perturbation summary: no metrics files given")
    return records


def runs_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (combination, seed, method) of run records (:func:`train_and_predict`'s metrics)."""
    import pandas as pd

    rows = []
    for record in records:
        for method in METHODS:
            scores = record["methods"][method]
            rows.append(
                {
                    "combination": record["combination"],
                    "seed": int(record["seed"]),
                    "method": method,
                    "control_type": record["control_type"],
                    "n_held_out": record["n_held_out"],
                    **{k: scores.get(k, np.nan) for k in (*SCORES, "code_distance", "n_cells")},
                    "train_seconds": record.get("train_seconds", np.nan),
                }
            )
    return pd.DataFrame(rows)


def improvement_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (combination, seed): the RF error of each method, ``improvement = rf_error(michigan) -
    rf_error(betatcvae)`` (positive: the GAN's cells are closer to the real held-out cells) and the prediction's
    delta-H."""
    from scsynth_core.data.checks import require_columns

    require_columns(runs, ["combination", "seed", "method", "rf_error", "delta_h"], "improvement_frame")
    wide = runs.pivot_table(index=["combination", "seed"], columns="method", values="rf_error", sort=False)
    missing = [m for m in ("michigan", "betatcvae") if m not in wide.columns]
    if missing:
        raise DataError(f"the runs lack method(s) {', '.join(missing)}: no improvement to compute")
    out = wide.reindex(columns=[m for m in METHODS if m in wide.columns])
    out.columns = [f"rf_error_{m}" for m in out.columns]
    out["improvement"] = out["rf_error_michigan"] - out["rf_error_betatcvae"]
    delta = runs[runs["method"] == "michigan"].set_index(["combination", "seed"])["delta_h"]
    out["delta_h"] = delta.reindex(out.index)
    return out.reset_index()


def summarise(
    *,
    inputs: Sequence[str | Path],
    runs: str | Path,
    table: str | Path,
    improvement: str | Path | None = None,
) -> None:
    """Tables of the experiment from the runs' metrics files (``inputs``).

    ``runs``: one row per (combination, seed, method); ``table``: per combination and method, the number of seeds
    and the mean and sd over seeds of every score; ``improvement`` (optional): per (combination, seed), each
    method's RF error, the improvement ``rf_error(michigan) - rf_error(betatcvae)`` and delta-H (Figs. 6-7).
    """
    records = read_records(inputs)
    frame = runs_frame(records)
    atomic.write_tsv(runs, frame.round(4))
    keys = ["combination", "method"]
    stats = frame.groupby(keys, sort=False)[list(SCORES)].agg(["mean", "std"])
    stats.columns = [f"{score}_{'sd' if stat == 'std' else stat}" for score, stat in stats.columns]
    stats.insert(0, "n_seeds", frame.groupby(keys, sort=False).size())
    atomic.write_tsv(table, stats.reset_index().round(4))
    if improvement is not None:
        atomic.write_tsv(improvement, improvement_frame(frame).round(4))
    log.info("summarised %d runs (%d combinations)", len(records), frame["combination"].nunique())


# ------------------------------------------------------------------------- Fig. 7b: the lowest delta-H, retrained
def rank_by_delta_h(improvement: pd.DataFrame, n_lowest: int, *, by: str = "delta_h") -> pd.DataFrame:
    """Fig. 7b's selection: the held-out combinations ranked by delta-H, lowest first.

    ``improvement``: :func:`improvement_frame` (one row per combination and seed). Per combination: ``n_seeds``,
    the mean and sd of delta-H over seeds and the mean improvement; ``rank`` 1 = the lowest mean delta-H
    (``by="delta_h"``, the paper's "lowest delta-H") or the lowest mean ``|delta-H|`` (``by="abs_delta_h"``: the
    predicted spread closest to the real one); ties broken by the combination's name. ``selected``: the
    ``n_lowest`` first (all of them when there are fewer).
    """
    import pandas as pd

    from scsynth_core.data.checks import require_columns

    if by not in RANK_BY:
        raise ConfigError(f"rank_by must be one of {', '.join(RANK_BY)}, got {by!r}")
    if int(n_lowest) < 1:
        raise ConfigError(f"n_lowest must be >= 1, got {n_lowest!r}")
    require_columns(improvement, ["combination", "seed", "delta_h", "improvement"], "rank_by_delta_h")
    frame = improvement.assign(abs_delta_h=improvement["delta_h"].abs())
    grouped = frame.groupby("combination", sort=True)
    table = pd.DataFrame(
        {
            "n_seeds": grouped.size(),
            "delta_h": grouped["delta_h"].mean(),
            "delta_h_sd": grouped["delta_h"].std(),
            "abs_delta_h": grouped["abs_delta_h"].mean(),
            "improvement": grouped["improvement"].mean(),
        }
    )
    if table[by].isna().any():
        missing = ", ".join(table.index[table[by].isna()])
        raise DataError(f"rank_by_delta_h: no delta-H for {missing}")
    table = table.reset_index().sort_values([by, "combination"], kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["selected"] = table["rank"] <= int(n_lowest)
    table["rank_by"] = by
    return table


def select_lowest_delta_h(*, improvement: str | Path, output: str | Path, n_lowest: int, by: str = "delta_h") -> None:
    """Write :func:`rank_by_delta_h` of the ``improvement`` table (:func:`summarise`) to ``output`` (TSV); the
    workflow retrains the ``selected`` combinations with further seeds."""
    import pandas as pd

    table = rank_by_delta_h(pd.read_csv(improvement, sep="\t"), n_lowest, by=by)
    if n_lowest > len(table):
        log.warning("retrain_lowest %d > %d held-out combinations: all are retrained", n_lowest, len(table))
    atomic.write_tsv(output, table.round(4))
    chosen = table[table["selected"]]
    log.info("lowest %s: %s", by, ", ".join(f"{c} ({d:.3f})" for c, d in zip(chosen["combination"], chosen[by])))


def selected_combinations(ranking: str | Path) -> list[str]:
    """The ``selected`` combinations of a :func:`select_lowest_delta_h` table, in rank order."""
    import pandas as pd

    table = pd.read_csv(ranking, sep="\t")
    return table.loc[table["selected"].astype(bool), "combination"].astype(str).tolist()


def summarise_retrain(*, ranking: str | Path, inputs: Sequence[str | Path], output: str | Path) -> None:
    """Fig. 7b's table: the retrained runs (metrics files ``inputs``) of the combinations ``ranking``
    (:func:`select_lowest_delta_h`) selected, one row per combination and seed: its rank, the mean delta-H of the
    first runs it was ranked by (``delta_h_ranked``), then this run's RF errors, improvement and delta-H."""
    import pandas as pd

    ranks = pd.read_csv(ranking, sep="\t")
    ranks = ranks[ranks["selected"].astype(bool)]
    runs = improvement_frame(runs_frame(read_records(inputs)))
    stray = sorted(set(runs["combination"]) - set(ranks["combination"]))
    if stray:
        raise DataError(f"{ranking}: retrained runs of combination(s) {', '.join(stray)} that are not selected")
    ranked = ranks[["rank", "combination", "delta_h"]].rename(columns={"delta_h": "delta_h_ranked"})
    table = ranked.merge(runs, on="combination", how="inner").sort_values(["rank", "seed"], kind="stable")
    atomic.write_tsv(output, table.round(4))
    log.info(
        "retrained %d runs of %d combinations; MichiGAN better in %d",
        len(table),
        table["combination"].nunique(),
        int((table["improvement"] > 0).sum()),
    )


def retrain_figure(*, table: str | Path, output: str | Path) -> None:
    """Fig. 7b: the RF errors of the GAN and the VAE decoder in the retrained runs of the lowest-delta-H
    combinations (:func:`summarise_retrain`'s table), drawn by
    :func:`scsynth_core.plots.perturbation.plot_retrained_errors`."""
    import pandas as pd

    from scsynth_core.plots.perturbation import plot_retrained_errors
    from scsynth_core.runtime import save_figure, use_agg

    use_agg()
    fig = plot_retrained_errors(pd.read_csv(table, sep="\t"), title="Retrained on the lowest delta-H")
    save_figure(fig, output)


# ------------------------------------------------------------------------------------------------- figures
def figures(
    *,
    runs: str | Path,
    cells: str | Path,
    errors: str | Path | None = None,
    delta_h: str | Path | None = None,
    umap: str | Path | None = None,
    n_neighbors: int = 15,
    seed: int = 0,
) -> None:
    """The experiment's figures (Yu & Welch 2021, Figs. 6-7 in our terms), each written when its file is given:
    ``errors`` (a: RF error per held-out combination and method, mean bar and seed points, from the ``runs``
    table of :func:`summarise`), ``delta_h`` (b: delta-H vs improvement, one point per combination and seed) and
    ``umap`` (c: UMAP of the real held-out and the predicted cells of one run, the ``cells`` file of
    :func:`train_and_predict`, embedded from their evaluation PCs; ``n_neighbors`` and ``seed`` of UMAP)."""
    import pandas as pd

    from scsynth_core.plots.perturbation import plot_delta_h_improvement, plot_error_bars, plot_prediction_embedding
    from scsynth_core.runtime import save_figure, use_agg

    use_agg()
    frame = pd.read_csv(runs, sep="\t")
    if errors is not None:
        save_figure(plot_error_bars(frame, title="Predicting held-out combinations"), errors)
    if delta_h is not None:
        fig = plot_delta_h_improvement(improvement_frame(frame), title="GAN vs VAE decoder")
        save_figure(fig, delta_h)
    if umap is not None:
        from scsynth_core.data.checks import read_h5ad
        from scsynth_core.embedding import embed

        predicted = read_h5ad(cells)
        if "method" not in predicted.obs or "X_pca" not in predicted.obsm:
            raise DataError(
                f"{cells}: not a predicted-cells file of the perturbation experiment "
                "(needs obs['method'] and obsm['X_pca'])"
            )
        coords = embed(
            np.asarray(predicted.obsm["X_pca"]),
            "umap",
            seed=seed,
            n_neighbors=min(n_neighbors, predicted.n_obs - 1),
            perplexity=30.0,
        )
        about = dict(predicted.uns.get("perturbation", {}))
        title = (
            f"held out {about.get('combination', '?')} (control {about.get('control_type', '?')}, "
            f"seed {about.get('seed', '?')})"
        )
        fig = plot_prediction_embedding(coords, predicted.obs["method"].astype(str).to_numpy(), title=title)
        save_figure(fig, umap)
