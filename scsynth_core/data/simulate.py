"""Simulated single-cell counts with known generating factors, for MichiGAN's disentanglement experiments.

:func:`simulate_splatter` implements the Splat model (Zappia, Phipson & Oshlack 2017, Genome Biology 18:174, Fig. 1
and Methods "Splat simulation") with MichiGAN's setting (Yu & Welch 2021, Genome Biology 22:158, "Simulated data");
:func:`simulate_prosstt` implements PROSSTT differentiation trees (Papadopoulos et al. 2019; MichiGAN's Table 3).
Model step by step, departures from splatter, defaults and output layout: docs/models.md, "Simulators".
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import ConfigError

if TYPE_CHECKING:
    import anndata as ad

#: Knots of the Brownian bridge of a non-linear gene (splatter's ``bridge(N = 5)``).
BRIDGE_KNOTS = 5

#: Floor for bridge values that fall below zero (splatter sets them to 1e-6).
BRIDGE_FLOOR = 1e-6

#: Matrix entries simulated per block of cells (bounds memory; part of the algorithm, so outputs do not depend on
#: the machine).
_BLOCK_ENTRIES = 1 << 22

DROPOUT_TYPES = ("none", "experiment")
STEP_VARIANTS = ("linear", "nonlinear")
CLUSTER_BY = ("path", "batch_path", "batch")

#: ``path_nonlinear_prob`` for ``step="nonlinear"`` when not given (splatter's default).
SPLATTER_NONLINEAR_PROB = 0.1

FloatOrSeq = float | Sequence[float]


@dataclass(frozen=True)
class SplatterParams:
    """Parameters of the Splat simulation (Splatter's ``SplatParams``, snake case); the model: docs/models.md,
    "Simulators".

    Per-batch (``batch_fac_*``) and per-path (``de_*``, ``path_n_steps``, ``path_skew``) parameters accept a scalar
    (shared) or one value per batch / path.
    """

    n_cells: int = 10_000
    n_genes: int = 1_000
    n_batches: int = 2
    n_paths: int = 2
    step: Literal["linear", "nonlinear"] = "linear"
    mean_shape: float = 0.6
    mean_rate: float = 0.3
    lib_loc: float = 11.0
    lib_scale: float = 0.2
    lib_norm: bool = False
    out_prob: float = 0.05
    out_fac_loc: float = 4.0
    out_fac_scale: float = 0.5
    batch_fac_loc: FloatOrSeq = 0.1
    batch_fac_scale: FloatOrSeq = 0.1
    path_prob: Sequence[float] | None = None
    path_from: Sequence[int] | None = None
    path_n_steps: int | Sequence[int] = 20
    path_skew: FloatOrSeq = 0.5
    path_nonlinear_prob: float | None = None
    path_sigma_fac: float = 0.8
    de_prob: FloatOrSeq = 0.5
    de_down_prob: FloatOrSeq = 0.5
    de_fac_loc: FloatOrSeq = 0.01
    de_fac_scale: FloatOrSeq = 0.5
    bcv_common: float = 0.1
    bcv_df: float = 60.0
    dropout_type: Literal["none", "experiment"] = "none"
    dropout_mid: float = 0.0
    dropout_shape: float = -1.0
    cluster_by: Literal["path", "batch_path", "batch"] = "path"

    def resolved(self) -> dict:
        """Check every parameter and return them with defaults filled in and per-group values as lists.

        Raises :class:`ConfigError` naming the first bad parameter.
        """
        out: dict = {}
        for name in ("n_cells", "n_genes", "n_batches", "n_paths"):
            out[name] = _positive_int(name, getattr(self, name))
        n_batches, n_paths = out["n_batches"], out["n_paths"]
        if out["n_cells"] < n_batches:
            raise ConfigError(f"n_cells ({out['n_cells']}) must be at least n_batches ({n_batches})")
        out["step"] = _choice("step", self.step, STEP_VARIANTS)
        out["dropout_type"] = _choice("dropout_type", self.dropout_type, DROPOUT_TYPES)
        out["cluster_by"] = _choice("cluster_by", self.cluster_by, CLUSTER_BY)
        out["lib_norm"] = _boolean("lib_norm", self.lib_norm)

        out["mean_shape"] = _number("mean_shape", self.mean_shape, low=0.0, low_open=True)
        out["mean_rate"] = _number("mean_rate", self.mean_rate, low=0.0, low_open=True)
        out["lib_loc"] = _number("lib_loc", self.lib_loc)
        out["lib_scale"] = _number("lib_scale", self.lib_scale, low=0.0)
        out["out_prob"] = _number("out_prob", self.out_prob, low=0.0, high=1.0)
        out["out_fac_loc"] = _number("out_fac_loc", self.out_fac_loc)
        out["out_fac_scale"] = _number("out_fac_scale", self.out_fac_scale, low=0.0)
        out["batch_fac_loc"] = _per_group("batch_fac_loc", self.batch_fac_loc, n_batches, "n_batches")
        out["batch_fac_scale"] = _per_group("batch_fac_scale", self.batch_fac_scale, n_batches, "n_batches", low=0.0)
        for name, low, high in (
            ("de_prob", 0.0, 1.0),
            ("de_down_prob", 0.0, 1.0),
            ("de_fac_loc", None, None),
            ("de_fac_scale", 0.0, None),
        ):
            out[name] = _per_group(name, getattr(self, name), n_paths, "n_paths", low=low, high=high)
        out["bcv_common"] = _number("bcv_common", self.bcv_common, low=0.0)
        out["bcv_df"] = _number("bcv_df", self.bcv_df, low=0.0, low_open=True, allow_inf=True)
        out["dropout_mid"] = _number("dropout_mid", self.dropout_mid)
        out["dropout_shape"] = _number("dropout_shape", self.dropout_shape)

        prob = [1.0 / n_paths] * n_paths if self.path_prob is None else self.path_prob
        out["path_prob"] = _per_group("path_prob", prob, n_paths, "n_paths", low=0.0, high=1.0, scalar=False)
        if abs(sum(out["path_prob"]) - 1.0) > 1e-6:
            raise ConfigError(f"path_prob must sum to 1, got {sum(out['path_prob']):g}")
        out["path_from"] = _path_from(self.path_from, n_paths)
        steps = self.path_n_steps
        steps = [steps] * n_paths if isinstance(steps, numbers.Integral) and not isinstance(steps, bool) else steps
        if not isinstance(steps, Sequence) or len(steps) != n_paths:
            raise ConfigError(f"path_n_steps must be an integer or {n_paths} integers (one per path), got {steps!r}")
        out["path_n_steps"] = [_positive_int("path_n_steps", s, minimum=2) for s in steps]
        out["path_skew"] = _per_group("path_skew", self.path_skew, n_paths, "n_paths", low=0.0, high=1.0)
        out["path_sigma_fac"] = _number("path_sigma_fac", self.path_sigma_fac, low=0.0)
        nonlinear = self.path_nonlinear_prob
        if nonlinear is None:
            nonlinear = 0.0 if out["step"] == "linear" else SPLATTER_NONLINEAR_PROB
        nonlinear = _number("path_nonlinear_prob", nonlinear, low=0.0, high=1.0)
        if out["step"] == "linear" and nonlinear > 0:
            raise ConfigError(
                f"path_nonlinear_prob={nonlinear:g} contradicts step='linear' (use step='nonlinear', or leave "
                "path_nonlinear_prob unset)"
            )
        if out["step"] == "nonlinear" and nonlinear == 0:
            raise ConfigError("path_nonlinear_prob=0 contradicts step='nonlinear' (use step='linear')")
        out["path_nonlinear_prob"] = nonlinear
        return out


# ----------------------------------------------------------------------------------------------- validation
def _number(name, value, *, low=None, high=None, low_open=False, allow_inf=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be <= {high:g}, got {value:g}")
    return value


def _positive_int(name, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _choice(name, value, options) -> str:
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return str(value)


def _boolean(name, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _per_group(name, value, n, what, *, low=None, high=None, scalar=True) -> list[float]:
    """A scalar (repeated ``n`` times, when ``scalar``) or a sequence of ``n`` numbers, each checked."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not scalar:
            raise ConfigError(f"{name} must be a list of {n} numbers ({what}), got {value!r}")
        value = [value] * n
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != n:
        raise ConfigError(f"{name} must be a number or a list of {n} numbers ({what} = {n}), got {value!r}")
    return [_number(name, v, low=low, high=high) for v in value]


def _path_from(path_from, n_paths: int) -> list[int]:
    """Check that ``path_from`` describes a tree rooted at the origin (0); return it as a list."""
    if path_from is None:
        return [0] * n_paths
    if (
        isinstance(path_from, (str, bytes))
        or not isinstance(path_from, (Sequence, np.ndarray))
        or len(path_from) != n_paths
    ):
        raise ConfigError(f"path_from must be a list of {n_paths} integers (n_paths), got {path_from!r}")
    out = []
    for k, origin in enumerate(path_from, start=1):
        if (
            isinstance(origin, bool)
            or not isinstance(origin, numbers.Integral)
            or not 0 <= origin <= n_paths
            or origin == k
        ):
            raise ConfigError(
                f"path_from[{k - 1}] must be 0 (the origin) or the number of another path (1..{n_paths}), "
                f"got {origin!r}"
            )
        out.append(int(origin))
    _path_order(out)  # raises on cycles
    return out


def _path_order(path_from: list[int]) -> list[int]:
    """Paths (1-based) ordered so that every path comes after the path it starts from."""
    done, order = {0}, []
    while len(order) < len(path_from):
        ready = [k for k, origin in enumerate(path_from, start=1) if k not in done and origin in done]
        if not ready:
            raise ConfigError(f"path_from {path_from} has a cycle: every path must lead back to the origin (0)")
        order.extend(ready)
        done.update(ready)
    return order


# ----------------------------------------------------------------------------------------------- model pieces
def lognormal_factors(
    rng: np.random.Generator, n: int, *, select_prob: float, down_prob: float, loc: float, scale: float
) -> np.ndarray:
    """Splatter's multiplicative factors (``getLNormFactors``): 1 for unselected genes, ``exp(+-|e|)`` otherwise.

    A gene is selected with probability ``select_prob``; ``e ~ Normal(loc, scale)``; the factor is below 1 with
    probability ``down_prob``. (Splatter draws a direction and a log-normal factor and flips the direction of
    factors below 1, which is the same as taking ``|e|`` with the drawn direction.)
    """
    selected = rng.random(n) < select_prob
    down = rng.random(n) < down_prob
    magnitude = np.abs(rng.normal(loc, scale, n))
    return np.where(selected, np.exp(np.where(down, -magnitude, magnitude)), 1.0)


def brownian_bridges(
    rng: np.random.Generator, start: np.ndarray, end: np.ndarray, n_steps: int, sigma_fac: float
) -> np.ndarray:
    """Smoothed Brownian bridges from ``start[g]`` to ``end[g]`` through ``n_steps`` points (steps x genes).

    splatter's ``bridge``: a random walk on :data:`BRIDGE_KNOTS` equally spaced knots in [0, 1] whose step s.d. is
    drawn per gene from ``Uniform(0, sigma_fac * (start + end) / 2)`` (times ``sqrt(dt)``), pinned to ``start``
    and ``end``, then interpolated through the steps by an Akima spline; values below 0 become 1e-6.
    """
    from scipy.interpolate import Akima1DInterpolator

    n_genes = start.shape[0]
    knots = np.linspace(0.0, 1.0, BRIDGE_KNOTS)
    sd = rng.uniform(0.0, 1.0, n_genes) * sigma_fac * (start + end) / 2.0
    walk = np.zeros((BRIDGE_KNOTS, n_genes))
    walk[1:] = np.cumsum(rng.normal(size=(BRIDGE_KNOTS - 1, n_genes)) * sd * np.sqrt(knots[1]), axis=0)
    # Pin both ends: subtract the walk's drift so it ends at `end` (the standard bridge construction).
    bridge = start + walk - knots[:, None] * (walk[-1] - end + start)
    smooth = Akima1DInterpolator(knots, bridge, axis=0)(np.linspace(0.0, 1.0, n_steps))
    smooth[smooth < 0] = BRIDGE_FLOOR
    return smooth


def path_factor_tables(rng: np.random.Generator, p: dict) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per path: the steps x genes factor table; plus end-point factors and non-linear flags (paths x genes)."""
    n_genes, n_paths = p["n_genes"], p["n_paths"]
    end = np.ones((n_paths + 1, n_genes))  # row 0: the origin
    for k in _path_order(p["path_from"]):
        de = lognormal_factors(
            rng,
            n_genes,
            select_prob=p["de_prob"][k - 1],
            down_prob=p["de_down_prob"][k - 1],
            loc=p["de_fac_loc"][k - 1],
            scale=p["de_fac_scale"][k - 1],
        )
        end[k] = end[p["path_from"][k - 1]] * de
    nonlinear = rng.random((n_paths, n_genes)) < p["path_nonlinear_prob"]
    tables = []
    for k in range(1, n_paths + 1):
        x, y, n_steps = end[p["path_from"][k - 1]], end[k], p["path_n_steps"][k - 1]
        t = np.linspace(0.0, 1.0, n_steps)[:, None]
        table = x + t * (y - x)
        bent = nonlinear[k - 1]
        if bent.any():
            table[:, bent] = brownian_bridges(rng, x[bent], y[bent], n_steps, p["path_sigma_fac"])
        tables.append(table)
    return tables, end[1:], nonlinear


def step_probabilities(n_steps: int, skew: float) -> np.ndarray:
    """Splatter's step weights: linear from ``skew`` (first step) to ``1 - skew`` (last), normalised."""
    weights = np.linspace(skew, 1.0 - skew, n_steps)
    return weights / weights.sum()


def batch_sizes(n_cells: int, n_batches: int) -> list[int]:
    """Contiguous, as equal as possible batch sizes (the first ``n_cells % n_batches`` batches get one more)."""
    base, extra = divmod(n_cells, n_batches)
    return [base + (b < extra) for b in range(n_batches)]


def _library_sizes(rng: np.random.Generator, p: dict) -> np.ndarray:
    if not p["lib_norm"]:
        return rng.lognormal(p["lib_loc"], p["lib_scale"], p["n_cells"])
    sizes = rng.normal(p["lib_loc"], p["lib_scale"], p["n_cells"])
    positive = sizes[sizes > 0]
    if positive.size == 0:
        raise ConfigError(
            f"lib_loc={p['lib_loc']:g}, lib_scale={p['lib_scale']:g} with lib_norm gave no positive library size"
        )
    sizes[sizes <= 0] = positive.min() / 2.0
    return sizes


def _simulate_block(count_rng, drop_rng, p, gene_means, factor_rows, lib, chi_scale) -> sp.csr_matrix:
    """Counts of one block of cells: library-scaled means -> BCV gamma -> Poisson -> dropout."""
    means = gene_means * factor_rows
    means *= (lib / means.sum(axis=1))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        bcv = (p["bcv_common"] + 1.0 / np.sqrt(means)) * chi_scale
        bcv2 = bcv * bcv
        cell_means = np.where(means > 0, count_rng.gamma(1.0 / bcv2, np.where(means > 0, means * bcv2, 0.0)), 0.0)
    counts = count_rng.poisson(cell_means)
    if p["dropout_type"] == "experiment":
        with np.errstate(divide="ignore", over="ignore"):
            drop_prob = 1.0 / (1.0 + np.exp(-p["dropout_shape"] * (np.log(cell_means) - p["dropout_mid"])))
        counts[drop_rng.random(counts.shape) < drop_prob] = 0
    return sp.csr_matrix(counts.astype(np.float32))


# ----------------------------------------------------------------------------------------------- entry point
def _resolved(klass, params, overrides: dict, what: str) -> dict:
    """``params`` (default ``klass()``) with the fields in ``overrides`` replaced, checked and resolved; an
    unknown name raises :class:`ConfigError` listing the known ones."""
    fields = {f.name for f in dataclasses.fields(klass)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"unknown {what} parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    return dataclasses.replace(klass() if params is None else params, **overrides).resolved()


def simulate_splatter(params: SplatterParams | None = None, /, *, seed: int = 0, **overrides) -> ad.AnnData:
    """Simulate a Splat dataset with paths and batches (Zappia et al. 2017; MichiGAN's simulated data).

    Parameters
    ----------
    params
        A :class:`SplatterParams` (default: MichiGAN's setting, docs/models.md, "Simulators").
    seed
        Seed of ``np.random.SeedSequence``; the same parameters and seed give identical data.
    **overrides
        Fields of :class:`SplatterParams` replacing those of ``params`` (e.g. ``n_cells=2000``,
        ``step="nonlinear"``, ``dropout_type="experiment"``). Unknown names raise :class:`ConfigError`.

    Returns
    -------
    AnnData with CSR float32 integer counts and the ground-truth factors in ``obs`` (``batch``, ``path``,
    ``step``, ``library_size``, ``cluster``), gene-level truth in ``var``/``varm`` and the parameters in
    ``uns["simulation"]``.
    """
    import anndata as ad

    p = _resolved(SplatterParams, params, overrides, "simulation")
    seed = _positive_int("seed", seed, minimum=0)
    gene_rng, cell_rng, count_rng, drop_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    n_cells, n_genes, n_batches, n_paths = p["n_cells"], p["n_genes"], p["n_batches"], p["n_paths"]

    # Gene level: base means, outliers, batch factors, path tables, BCV chi-squared scale.
    base_means = gene_rng.gamma(p["mean_shape"], 1.0 / p["mean_rate"], n_genes)
    outlier = lognormal_factors(
        gene_rng, n_genes, select_prob=p["out_prob"], down_prob=0.0, loc=p["out_fac_loc"], scale=p["out_fac_scale"]
    )
    gene_means = np.where(outlier != 1.0, np.median(base_means) * outlier, base_means)
    batch_factors = np.ones((n_batches, n_genes))
    if n_batches > 1:
        for b in range(n_batches):
            batch_factors[b] = lognormal_factors(
                gene_rng,
                n_genes,
                select_prob=1.0,
                down_prob=0.5,
                loc=p["batch_fac_loc"][b],
                scale=p["batch_fac_scale"][b],
            )
    tables, de_factors, nonlinear = path_factor_tables(gene_rng, p)
    if math.isinf(p["bcv_df"]):
        chi_scale = np.ones(n_genes)
    else:
        chi_scale = np.sqrt(p["bcv_df"] / gene_rng.chisquare(p["bcv_df"], n_genes))

    # Cell level: batches (contiguous blocks), library sizes, paths and steps.
    batch = np.repeat(np.arange(n_batches), batch_sizes(n_cells, n_batches))
    lib = _library_sizes(cell_rng, p)
    path = cell_rng.choice(n_paths, size=n_cells, p=np.asarray(p["path_prob"]) / sum(p["path_prob"]))
    step = np.zeros(n_cells, dtype=np.int64)
    for k in range(n_paths):  # a loop over the (few) paths; cells are drawn at once
        members = np.flatnonzero(path == k)
        probs = step_probabilities(p["path_n_steps"][k], p["path_skew"][k])
        step[members] = cell_rng.choice(len(probs), size=members.size, p=probs) + 1
    # All paths' tables stacked: the row of a cell is its path's offset + step - 1.
    table = np.vstack(tables)
    offsets = np.cumsum([0] + p["path_n_steps"][:-1])
    rows = offsets[path] + step - 1
    batch_means = gene_means * batch_factors

    block = max(1, _BLOCK_ENTRIES // n_genes)
    blocks = [
        _simulate_block(
            count_rng,
            drop_rng,
            p,
            batch_means[batch[i : i + block]],
            table[rows[i : i + block]],
            lib[i : i + block],
            chi_scale,
        )
        for i in range(0, n_cells, block)
    ]
    X = sp.vstack(blocks, format="csr")

    batch_names = [f"Batch{b + 1}" for b in range(n_batches)]
    path_names = [f"Path{k + 1}" for k in range(n_paths)]
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical.from_codes(batch, categories=batch_names),
            "path": pd.Categorical.from_codes(path, categories=path_names),
            "step": step,
            "library_size": lib,
        },
        index=pd.Index([f"Cell{i + 1}" for i in range(n_cells)]),
    )
    obs["cluster"] = _clusters(obs, p["cluster_by"], batch_names, path_names)
    var = pd.DataFrame(
        {"base_gene_mean": base_means, "outlier_factor": outlier, "gene_mean": gene_means},
        index=pd.Index([f"Gene{g + 1}" for g in range(n_genes)]),
    )
    for b, name in enumerate(batch_names):
        var[f"batch_factor_{name}"] = batch_factors[b]
    for k, name in enumerate(path_names):
        var[f"de_factor_{name}"] = de_factors[k]
        var[f"nonlinear_{name}"] = nonlinear[k]
    varm = {f"path_factors_{name}": tables[k].T.copy() for k, name in enumerate(path_names)}
    uns = {
        "simulation": {
            "method": "splat",
            "reference": "Zappia, Phipson & Oshlack 2017, Genome Biology 18:174",
            "seed": seed,
            "batch_cells": batch_sizes(n_cells, n_batches),
            **p,
        }
    }
    return ad.AnnData(X=X, obs=obs, var=var, varm=varm, uns=uns)


def _clusters(obs: pd.DataFrame, cluster_by: str, batch_names: list[str], path_names: list[str]) -> pd.Categorical:
    if cluster_by == "path":
        return obs["path"].copy()
    if cluster_by == "batch":
        return obs["batch"].copy()
    names = [f"{b}_{k}" for b in batch_names for k in path_names]
    codes = obs["batch"].cat.codes.to_numpy() * len(path_names) + obs["path"].cat.codes.to_numpy()
    return pd.Categorical.from_codes(codes, categories=names)


# ----------------------------------------------------------------------------------------------- PROSSTT trees
PROSSTT_REFERENCE = "Papadopoulos, Gonzalo & Soeding 2019, Bioinformatics 35(18):3517-3519 (PROSSTT)"

#: Ground-truth factors of a PROSSTT-style tree (obs columns), as MichiGAN scores them: branch and pseudotime step.
PROSSTT_FACTORS = ("branch", "step")

#: Redraws of a branch whose relative expression exceeds ``max_log_relative`` before giving up.
_MAX_BRANCH_DRAWS = 200


@dataclass(frozen=True)
class ProssttParams:
    """Parameters of :func:`simulate_prosstt` (PROSSTT's names in brackets; defaults PROSSTT's unless noted).

    * ``n_branches`` tree segments (``num_branches``); ``branch_from``: the parent of branches 2..n (1-based,
      branch 1 is the root), default binary breadth-first (branch ``k`` starts at the end of branch ``k // 2``;
      an even count makes the last branch point a trifurcation: 4 branches = root + 3 children). Our choice: the
      topologies of MichiGAN's 3/4/5-branch trees are not in the project's reference notes.
    * ``branch_length`` pseudotime steps per branch (``time``; one value or one per branch), 50 (our choice).
    * ``n_programs`` expression programs (``modules``), 10; ``coef_shape`` Gamma shape of the program-to-gene
      weights (``a``), 0.05; each program is a random walk with momentum (``diffusion``): velocity starts at
      ``Normal(0, velocity_sd = 0.2)``, decays by ``momentum - eta`` per step (``momentum`` 0.95, ``eta ~ U(0,
      1)`` per walk) and takes ``Normal(0, 2 / T)`` kicks.
    * ``max_log_relative`` (``rel_exp_cutoff``) 8: a branch is redrawn while its log relative expression exceeds it.
    * Base gene expression ``exp(Normal(gene_loc = 0.8, gene_scale = 1))``, redrawn while a gene's largest mean
      exceeds ``max_gene_mean`` (``abs_max``) 5,000.
    * Negative binomial variance ``alpha mu^2 + beta mu`` per gene: ``alpha = exp(Normal(log alpha_mean, log
      alpha_scale))`` (0.2, 1.5), ``beta = exp(Normal(log beta_mean, log beta_scale)) + 1`` (2, 1.5)
      (``generate_negbin_params``).
    * Library size factors ``exp(Normal(0, lib_scale = 0.7))`` (``scale_v``).
    """

    n_cells: int = 10_000
    n_genes: int = 1_000
    n_branches: int = 3
    branch_from: Sequence[int] | None = None
    branch_length: int | Sequence[int] = 50
    n_programs: int = 10
    coef_shape: float = 0.05
    velocity_sd: float = 0.2
    momentum: float = 0.95
    max_log_relative: float = 8.0
    gene_loc: float = 0.8
    gene_scale: float = 1.0
    max_gene_mean: float = 5000.0
    alpha_mean: float = 0.2
    alpha_scale: float = 1.5
    beta_mean: float = 2.0
    beta_scale: float = 1.5
    lib_scale: float = 0.7

    def resolved(self) -> dict:
        """Checked parameters with the topology and branch lengths as lists; :class:`ConfigError` names the first
        bad one."""
        out: dict = {
            name: _positive_int(name, getattr(self, name))
            for name in ("n_cells", "n_genes", "n_branches", "n_programs")
        }
        n = out["n_branches"]
        for name in ("coef_shape", "velocity_sd", "max_log_relative", "max_gene_mean", "alpha_mean", "beta_mean"):
            out[name] = _number(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("gene_scale", "lib_scale"):
            out[name] = _number(name, getattr(self, name), low=0.0)
        for name in ("alpha_scale", "beta_scale"):
            out[name] = _number(name, getattr(self, name), low=1.0)  # log of it is the s.d.
        out["momentum"] = _number("momentum", self.momentum, low=0.0, high=1.0)
        out["gene_loc"] = _number("gene_loc", self.gene_loc)
        lengths = self.branch_length
        if isinstance(lengths, numbers.Integral) and not isinstance(lengths, bool):
            lengths = [lengths] * n
        if isinstance(lengths, (str, bytes)) or not isinstance(lengths, (Sequence, np.ndarray)) or len(lengths) != n:
            raise ConfigError(f"branch_length must be an integer or {n} integers (one per branch), got {lengths!r}")
        out["branch_length"] = [_positive_int("branch_length", t, minimum=2) for t in lengths]
        out["branch_from"] = _branch_from(self.branch_from, n)
        return out


def default_branch_from(n_branches: int) -> list[int]:
    """Parents (1-based) of branches 2..n: binary breadth-first, the last branch point a trifurcation when the
    count is even (see :class:`ProssttParams`)."""
    parents = [k // 2 for k in range(2, n_branches + 1)]
    if n_branches > 2 and n_branches % 2 == 0:
        parents[-1] = (n_branches - 1) // 2
    return parents


def _branch_from(branch_from, n: int) -> list[int]:
    if branch_from is None:
        return default_branch_from(n)
    if (
        isinstance(branch_from, (str, bytes))
        or not isinstance(branch_from, (Sequence, np.ndarray))
        or len(branch_from) != n - 1
    ):
        raise ConfigError(
            f"branch_from must list the parent of branches 2..{n} ({n - 1} integers), got {branch_from!r}"
        )
    for k, parent in enumerate(branch_from, start=2):
        # a parent numbered below its child: every branch leads back to the root, no cycles
        if isinstance(parent, bool) or not isinstance(parent, numbers.Integral) or not 1 <= parent < k:
            raise ConfigError(f"branch_from: the parent of branch {k} must be a branch 1..{k - 1}, got {parent!r}")
    return [int(p) for p in branch_from]


def expression_programs(rng: np.random.Generator, n_steps: int, p: dict) -> np.ndarray:
    """PROSSTT's ``diffusion``: ``n_programs`` random walks with momentum over ``n_steps`` (steps x programs),
    starting at 0: ``w[t+1] = w[t] + v[t]``, ``v[t+1] = (momentum - eta) v[t] + Normal(0, 2 / n_steps)``."""
    k = p["n_programs"]
    velocity = rng.normal(0.0, p["velocity_sd"], k)
    damping = p["momentum"] - rng.uniform(0.0, 1.0, k)
    kicks = rng.normal(0.0, 2.0 / n_steps, (n_steps - 1, k))
    walk = np.zeros((n_steps, k))
    for t in range(n_steps - 1):
        walk[t + 1] = walk[t] + velocity
        velocity = damping * velocity + kicks[t]
    return walk


def tree_log_means(rng: np.random.Generator, p: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """Log relative means (steps x genes) of every branch, each continuing from the end of its parent, and the
    program-to-gene weights (programs x genes)."""
    weights = rng.gamma(p["coef_shape"], 1.0, (p["n_programs"], p["n_genes"]))
    parents = [0, *p["branch_from"]]  # 1-based parents; 0: the root has none
    tables: list[np.ndarray] = []
    for b, length in enumerate(p["branch_length"]):
        start = tables[parents[b] - 1][-1] if parents[b] else np.zeros(p["n_genes"])
        for _ in range(_MAX_BRANCH_DRAWS):
            table = start + expression_programs(rng, length, p) @ weights
            if table.max() <= p["max_log_relative"]:
                break
        else:
            raise ConfigError(
                f"PROSSTT branch {b + 1}: no draw in {_MAX_BRANCH_DRAWS} kept the log relative "
                f"expression below max_log_relative={p['max_log_relative']:g} (raise it, or lower "
                "coef_shape or the branch lengths)"
            )
        tables.append(table)
    return tables, weights


def simulate_prosstt(params: ProssttParams | None = None, /, *, seed: int = 0, **overrides) -> ad.AnnData:
    """Simulate a branching differentiation tree in the manner of PROSSTT (Papadopoulos et al. 2019; MichiGAN's
    second simulator, Yu & Welch 2021, "Simulated data": 3-, 4- and 5-branch trees).

    The model (PROSSTT's ``simulate_lineage`` + ``sample_density`` + ``draw_counts``; :class:`ProssttParams`):
    every branch has expression programs (random walks with momentum over its pseudotime steps); a gene's log
    relative expression is the programs weighted by Gamma-distributed coefficients shared by all branches, and a
    child branch starts where its parent ends. Cells are drawn uniformly over the tree's (branch, step) positions;
    a cell's mean is ``base_g x exp(log relative mean) x library size factor`` and its count is negative binomial
    with variance ``alpha_g mu^2 + beta_g mu`` (drawn as gamma-Poisson).

    Departures from PROSSTT: no rejection of correlated programs within a branch (``intra_branch_tol``) or of
    parallel branches that do not anti-correlate (``inter_branch_tol``), only the ``rel_exp_cutoff`` redraw;
    cells uniform over the tree, not PROSSTT's other samplers; NumPy generators from ``np.random.SeedSequence(seed)``
    (three streams: tree and genes, cell positions and sizes, counts), so a seed gives the same data with this code
    but not PROSSTT's numbers.

    Returns an AnnData with CSR float32 integer counts; ``obs``: ``branch`` (categorical ``Branch1..``), ``step``
    (pseudotime from the root, 1..), ``branch_step`` (step within the branch), ``library_size`` (size factor),
    ``cluster`` (= branch); ``var``: ``base_gene_mean``, ``nb_alpha``, ``nb_beta``; ``varm["log_means_<Branch>"]``
    genes x steps; ``uns["simulation"]``: parameters, seed, branch start steps and ``factors`` (branch, step).
    """
    import anndata as ad

    p = _resolved(ProssttParams, params, overrides, "PROSSTT")
    seed = _positive_int("seed", seed, minimum=0)
    tree_rng, cell_rng, count_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    n_cells, n_genes, lengths = p["n_cells"], p["n_genes"], p["branch_length"]

    tables, _ = tree_log_means(tree_rng, p)
    peak = np.exp(np.max([t.max(axis=0) for t in tables], axis=0))
    base = np.exp(tree_rng.normal(p["gene_loc"], p["gene_scale"], n_genes))
    for _ in range(1000):  # PROSSTT's simulate_base_gene_exp: redraw genes whose largest mean is too high
        high = base * peak > p["max_gene_mean"]
        if not high.any():
            break
        base[high] = np.exp(tree_rng.normal(p["gene_loc"], p["gene_scale"], int(high.sum())))
    alpha = np.exp(tree_rng.normal(np.log(p["alpha_mean"]), np.log(p["alpha_scale"]), n_genes))
    beta = np.exp(tree_rng.normal(np.log(p["beta_mean"]), np.log(p["beta_scale"]), n_genes)) + 1.0

    # Positions: uniform over every (branch, step) of the tree; global steps continue from the parent's end.
    starts = [0] * len(lengths)
    for b, parent in enumerate(p["branch_from"], start=1):
        starts[b] = starts[parent - 1] + lengths[parent - 1]
    offsets = np.cumsum([0, *lengths[:-1]])
    position = cell_rng.integers(0, sum(lengths), n_cells)
    branch = np.searchsorted(offsets, position, side="right") - 1
    local = position - offsets[branch]
    size = np.exp(cell_rng.normal(0.0, p["lib_scale"], n_cells))
    log_means = np.vstack(tables)

    blocks = []
    for i in range(0, n_cells, max(1, _BLOCK_ENTRIES // n_genes)):
        rows = slice(i, i + max(1, _BLOCK_ENTRIES // n_genes))
        mu = base * np.exp(log_means[position[rows]]) * size[rows, None]
        scale = alpha * mu + beta - 1.0  # gamma scale; shape mu / scale gives variance alpha mu^2 + beta mu
        blocks.append(sp.csr_matrix(count_rng.poisson(count_rng.gamma(mu / scale, scale)).astype(np.float32)))
    X = sp.vstack(blocks, format="csr")

    names = [f"Branch{b + 1}" for b in range(len(lengths))]
    obs = pd.DataFrame(
        {
            "branch": pd.Categorical.from_codes(branch, categories=names),
            "step": np.asarray(starts)[branch] + local + 1,
            "branch_step": local + 1,
            "library_size": size,
        },
        index=pd.Index([f"Cell{i + 1}" for i in range(n_cells)]),
    )
    obs["cluster"] = obs["branch"].copy()
    var = pd.DataFrame(
        {"base_gene_mean": base, "nb_alpha": alpha, "nb_beta": beta},
        index=pd.Index([f"Gene{g + 1}" for g in range(n_genes)]),
    )
    varm = {f"log_means_{name}": tables[b].T.copy() for b, name in enumerate(names)}
    uns = {
        "simulation": {
            "method": "prosstt",
            "reference": PROSSTT_REFERENCE,
            "seed": seed,
            "branch_start": starts,
            "factors": list(PROSSTT_FACTORS),
            **p,
        }
    }
    return ad.AnnData(X=X, obs=obs, var=var, varm=varm, uns=uns)
