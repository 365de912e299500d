"""Train/test splits and subsamples, stored as small index files of cell names (never as copies of the data).

- :func:`balanced_split`: scGAN's per-cluster ("balanced") test split (Marouf et al. 2020, Methods; scGAN
  ``process_raw.py``; reused by ACTIVA, Heydari et al. 2022, "about 10 % of every cluster").
- :func:`pilot_subsample`: pilot studies of Treppner et al. 2021 (cells drawn with replacement, as the
  reference ``rand(1:n, t)``).
- :func:`nested_downsample`: the rare-population experiment of Marouf et al. 2020 (Results "cscGAN ...
  augmentation"; Heydari et al. 2022): one cluster downsampled to nested fractions, every smaller sample a
  subset of every larger one for the same seed.

Files are tab-separated with a header, written atomically with fixed formatting so identical inputs give
byte-identical files. :func:`write_split` / :func:`read_split` round-trip the three kinds of object.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.atomic import write_text
from scsynth_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import anndata as ad

#: Nested downsampling fractions of Marouf et al. 2020 (50, 25, 10, 5, 3, 2, 1 and 0.5 %).
MAROUF_LEVELS = (0.5, 0.25, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005)

_LEVEL_PREFIX = "level_"


def _exact(x: float) -> Fraction:
    """A decimal fraction such as 0.29 as the exact rational it denotes (avoids 0.29 * 100 = 28.999...)."""
    return Fraction(x).limit_denominator(10**9)


def _check_unique(names: pd.Index, *, what: str) -> None:
    if names.has_duplicates:
        dup = names[names.duplicated()][:3].tolist()
        raise DataError(f"{what}: cell names must be unique (duplicated: {', '.join(map(str, dup))})")


def balanced_split(
    labels: pd.Series, *, test_fraction: float | None = None, test_cells: int | None = None, seed: int = 0
) -> pd.Series:
    """Per-cluster ("balanced") train/test split of scGAN.

    For every cluster ``k`` with ``n_k`` of ``n`` cells, ``test_k = floor(ratio_k * n_test)`` cells with
    ``ratio_k = n_k / n`` go to the test set, drawn without replacement; the rest is ``"train"``. Flooring makes
    the test set slightly smaller than ``n_test`` (ACTIVA's PBMC test set has 6,991 cells for a 7,000 target).
    The floor is computed in exact arithmetic: ``(n_k * test_cells) // n``, or ``floor(test_fraction * n_k)``
    (``n_test = test_fraction * n``); the reference's float product can fall one short when the exact value is
    an integer.

    Parameters
    ----------
    labels
        Cluster label per cell, indexed by unique cell names.
    test_fraction, test_cells
        Exactly one: the test set's target as a fraction of all cells (0 < f < 1) or as a number of cells.
    seed
        Seed of ``numpy.random.default_rng``; clusters are visited in sorted order of their names (as strings).

    Returns
    -------
    pandas.Series
        ``"train"`` / ``"test"`` per cell, same index and order as ``labels``, named ``"split"``.
    """
    if (test_fraction is None) == (test_cells is None):
        raise ConfigError("balanced_split: give exactly one of test_fraction or test_cells")
    _check_unique(labels.index, what="balanced_split")
    if labels.isna().any():
        raise DataError(f"balanced_split: {int(labels.isna().sum())} cells have no cluster label")
    n = len(labels)
    if test_fraction is not None:
        if not 0 < test_fraction < 1:
            raise ConfigError(f"balanced_split: test_fraction must be in (0, 1), got {test_fraction}")
        frac = _exact(test_fraction)
        n_test_of = lambda n_k: math.floor(frac * n_k)
    else:
        if isinstance(test_cells, bool) or not isinstance(test_cells, (int, np.integer)) or not 0 <= test_cells <= n:
            raise ConfigError(f"balanced_split: test_cells must be an integer in [0, {n}], got {test_cells!r}")
        n_test_of = lambda n_k: (n_k * int(test_cells)) // n
    rng = np.random.default_rng(seed)
    keys = labels.astype(str).to_numpy()
    is_test = np.zeros(n, dtype=bool)
    for cluster in sorted(set(keys)):
        members = np.flatnonzero(keys == cluster)
        k = n_test_of(len(members))
        if k:
            is_test[rng.choice(members, size=k, replace=False)] = True
    split = np.where(is_test, "test", "train").astype(object)
    return pd.Series(split, index=pd.Index(labels.index.astype(str)).rename(None), name="split")


def pilot_subsample(cell_names: Sequence[str], *, size: int, seed: int, replace: bool = True) -> list[str]:
    """Draw a pilot study of ``size`` cells (Treppner et al. 2021, Methods "Pilot studies").

    The reference draws with replacement (``rand(1:n, t)``), so names can repeat; the list keeps the order of the
    draws. With ``replace=False`` the cells are distinct (``size`` at most the number of cells).
    """
    names = [str(x) for x in cell_names]
    n = len(names)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"pilot_subsample: size must be a positive integer, got {size!r}")
    if n == 0:
        raise DataError("pilot_subsample: no cells to draw from")
    if not replace and size > n:
        raise ConfigError(f"pilot_subsample: size {size} exceeds the {n} cells (without replacement)")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=int(size)) if replace else rng.choice(n, size=int(size), replace=False)
    return [names[i] for i in idx]


def nested_downsample(
    labels: pd.Series, *, cluster: str, levels: Sequence[float] = MAROUF_LEVELS, seed: int
) -> dict[float, list[str]]:
    """Keep nested fractions of one cluster's cells (Marouf et al. 2020, augmentation experiment).

    One random permutation of the cluster's cells per seed; level ``f`` keeps its first
    ``max(1, floor(f * n_cluster))`` cells (floor in exact decimal arithmetic, like the balanced split), so
    every smaller level is a subset (a prefix) of every larger one. Other clusters are untouched and not listed.

    Parameters
    ----------
    labels
        Cluster label per cell, indexed by unique cell names (typically the training cells).
    cluster
        The cluster to downsample; compared as a string with the labels.
    levels
        Fractions in (0, 1]; default :data:`MAROUF_LEVELS`.
    seed
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    dict
        level -> the kept cell names in permutation order, in the order of ``levels``.
    """
    _check_unique(labels.index, what="nested_downsample")
    levels = [float(x) for x in levels]
    if not levels or any(not 0 < x <= 1 for x in levels):
        raise ConfigError(f"nested_downsample: levels must be fractions in (0, 1], got {levels}")
    keys = labels.astype(str).to_numpy()
    members = np.flatnonzero(keys == str(cluster))
    if members.size == 0:
        present = ", ".join(sorted(set(keys))[:20])
        raise DataError(f"nested_downsample: cluster '{cluster}' not found in the labels (present: {present})")
    rng = np.random.default_rng(seed)
    order = labels.index.astype(str).to_numpy()[rng.permutation(members)]
    n = len(order)
    return {level: order[: max(1, math.floor(_exact(level) * n))].tolist() for level in levels}


def resolve_target_cluster(labels: pd.Series, target: str = "auto") -> str:
    """The cluster to downsample: a named label, or ``"auto"`` = the second largest cluster.

    Marouf et al. 2020 downsample PBMC cluster 2, the second largest (15,008 cells), as their rare population.
    """
    counts = labels.astype(str).value_counts()
    if target == "auto":
        if len(counts) < 2:
            raise DataError("augmentation needs at least two clusters to pick the second largest as the target")
        # Ties broken by label so the choice never depends on row order.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return ranked[1][0]
    if str(target) not in counts.index:
        raise DataError(f"target cluster '{target}' not found (clusters: {', '.join(sorted(counts.index))})")
    return str(target)


def downsampled_splits(
    split: pd.Series, labels: pd.Series, *, cluster: str, levels: Sequence[float], seed: int
) -> dict[float, pd.Series]:
    """Nested downsampling of one cluster's TRAINING cells, as complete split series (Marouf 2020 Fig. 3).

    For each level, the training cells of every other cluster stay ``train``, the kept cells of ``cluster``
    (nested prefixes of one permutation, :func:`nested_downsample`) are ``train``, its other training cells
    become ``held_out``, and ``test`` cells are untouched, so no generator ever sees the cluster's test cells.
    """
    labels = labels.reindex(split.index)
    train = split[split == "train"].index
    kept = nested_downsample(labels.loc[train], cluster=cluster, levels=levels, seed=seed)
    is_target_train = (split == "train") & (labels.astype(str) == str(cluster))
    out = {}
    for level, names in kept.items():
        series = split.astype(object).copy()
        series[is_target_train] = "held_out"
        series[pd.Index(names)] = "train"
        out[level] = series
    return out


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------


def _check_name(name: str, *, path) -> str:
    name = str(name)
    if not name or any(c in name for c in "\t\n\r"):
        raise DataError(f"{path}: cell name {name!r} is empty or contains a tab/newline (cannot be stored)")
    return name


def _format_level(level: float) -> str:
    return _LEVEL_PREFIX + repr(float(level))


def write_split(path: str | os.PathLike, obj: pd.Series | Sequence[str] | Mapping[float, Sequence[str]]) -> None:
    """Write a split or subsample as a TSV index file (atomically, byte-stable).

    Three layouts, one row per cell (or per draw), chosen by the type of ``obj``:

    - ``pandas.Series`` (cell -> value, e.g. from :func:`balanced_split`): columns ``cell`` and the series name
      (``split`` when unnamed).
    - a sequence of names (e.g. from :func:`pilot_subsample`): one column ``cell``, one row per draw in order,
      repeats kept.
    - a mapping level -> names (from :func:`nested_downsample`): column ``cell`` then one 0/1 membership column
      ``level_<fraction>`` per level; rows are the union of cells, largest level first, in list order.
    """
    lines: list[str]
    if isinstance(obj, pd.Series):
        _check_unique(pd.Index(obj.index.astype(str)), what=str(path))
        column = _check_name(obj.name if obj.name is not None else "split", path=path)
        lines = [f"cell\t{column}"]
        for cell, value in zip(obj.index, obj.to_numpy()):
            lines.append(f"{_check_name(cell, path=path)}\t{_check_name(value, path=path)}")
    elif isinstance(obj, Mapping):
        levels = list(obj)
        members = {level: set(map(str, obj[level])) for level in levels}
        rows: list[str] = []
        seen: set[str] = set()
        for level in sorted(levels, key=lambda x: -len(members[x])):
            for cell in map(str, obj[level]):
                if cell not in seen:
                    seen.add(cell)
                    rows.append(_check_name(cell, path=path))
        lines = ["cell\t" + "\t".join(_format_level(level) for level in levels)]
        lines += [cell + "\t" + "\t".join("1" if cell in members[lv] else "0" for lv in levels) for cell in rows]
    elif isinstance(obj, (str, bytes)):
        raise ConfigError(f"{path}: write_split needs a Series, a list of cell names or a level mapping, not a string")
    else:
        lines = ["cell"] + [_check_name(cell, path=path) for cell in obj]
    write_text(path, "\n".join(lines) + "\n")


def read_split(path: str | os.PathLike) -> pd.Series | list[str] | dict[float, list[str]]:
    """Read a file written by :func:`write_split`, returning the same kind of object.

    A ``cell`` + value file gives a ``pandas.Series`` (index = cells, name = the value column); a ``cell``-only
    file a list of names; ``level_*`` columns a dict level -> names. Missing or malformed files raise a
    :class:`DataError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split file not found")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)
    except Exception as exc:  # noqa: BLE001 - empty/garbled text, or bad zip/xz/gz (compression follows the name)
        raise DataError(f"{path}: not a readable split file ({type(exc).__name__}: {exc})") from None
    columns = list(table.columns)
    if not columns or columns[0] != "cell":
        raise DataError(f"{path}: first column must be 'cell' (found: {', '.join(map(str, columns)) or 'none'})")
    cells = table["cell"].tolist()
    if len(columns) == 1:
        return cells
    if all(c.startswith(_LEVEL_PREFIX) for c in columns[1:]):
        out: dict[float, list[str]] = {}
        for column in columns[1:]:
            try:
                level = float(column[len(_LEVEL_PREFIX) :])
            except ValueError:
                raise DataError(f"{path}: column '{column}' is not level_<fraction>") from None
            flags = table[column]
            if not flags.isin(["0", "1"]).all():
                raise DataError(f"{path}: column '{column}' must hold 0/1 membership flags")
            out[level] = table.loc[flags == "1", "cell"].tolist()
        return out
    if len(columns) != 2:
        raise DataError(f"{path}: expected columns 'cell' and one value column, found {', '.join(columns)}")
    index = pd.Index(cells, name=None)
    _check_unique(index, what=str(path))
    return pd.Series(table[columns[1]].to_numpy(dtype=object), index=index, name=columns[1])


def apply_split(adata: ad.AnnData, split: pd.Series, *, source: str = "split") -> ad.AnnData:
    """Add ``obs["split"]`` (categorical ``train``/``test``/...) from a split, in place; returns ``adata``.

    Every cell named by the split must be in ``adata`` and every cell of ``adata`` must be in the split;
    otherwise a :class:`DataError` names ``source`` (the split file) and a few of the offending cells.
    """
    index = pd.Index(split.index.astype(str))
    _check_unique(index, what=source)
    obs_names = pd.Index(adata.obs_names.astype(str))
    absent = index.difference(obs_names, sort=False)
    if len(absent):
        raise DataError(
            f"{source}: {len(absent)} cells of the split are not in the data (e.g. {', '.join(absent[:3])})"
        )
    missing = obs_names.difference(index, sort=False)
    if len(missing):
        raise DataError(
            f"{source}: {len(missing)} cells of the data have no split entry (e.g. {', '.join(missing[:3])})"
        )
    values = pd.Series(split.to_numpy(), index=index).reindex(obs_names).astype(str).to_numpy()
    order = [c for c in ("train", "test") if c in set(values)] + sorted(set(values) - {"train", "test"})
    adata.obs["split"] = pd.Categorical(values, categories=order)
    return adata


def select_cells(adata: ad.AnnData, names: Sequence[str], *, source: str = "subsample") -> ad.AnnData:
    """A new AnnData of the named cells in the given order (e.g. a pilot drawn with replacement).

    Repeated names become separate cells with unique names (anndata's ``obs_names_make_unique``: ``-1``, ``-2``
    suffixes); ``obs["source_cell"]`` keeps the original name. Unknown names raise a :class:`DataError`.
    """
    names = [str(x) for x in names]
    obs_names = pd.Index(adata.obs_names.astype(str))
    positions = obs_names.get_indexer(names)
    if (positions < 0).any():
        bad = [n for n, p in zip(names, positions) if p < 0][:3]
        raise DataError(f"{source}: {int((positions < 0).sum())} cells are not in the data (e.g. {', '.join(bad)})")
    from anndata.utils import make_index_unique

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # repeated names are made unique just below
        out = adata[positions].copy()
    out.obs["source_cell"] = names
    out.obs_names = make_index_unique(pd.Index(names))
    return out
