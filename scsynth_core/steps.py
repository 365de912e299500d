"""The workflow's generic stage steps (download, import, prepare, split, train, generate) as plain functions of
paths and values, and the readers every experiment shares.

Each stage rule's script and each ``scsynth`` CLI sub-command calls exactly one of these, so both run the same
code; the experiments' steps live in :mod:`scsynth_core.experiments`. Steps read inputs, call the library, and
write every output atomically. They know nothing about Snakemake.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scsynth_core import atomic
from scsynth_core.errors import ConfigError, ScsynthError
from scsynth_core.runtime import cache_numba_compilation, set_threads

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import anndata as ad

log = logging.getLogger("scsynth")


# -- running a step with its log ------------------------------------------------------------------------------
def run_logged(log_path: str | Path | None, func: Callable[..., Any], /, **kwargs: Any) -> None:
    """Run ``func(**kwargs)`` with stdout, stderr and logging sent to ``log_path``.

    A :class:`ScsynthError` ends the process with status 1 after writing its one-line message to the log and to
    the original stderr (so Snakemake shows it); any other exception keeps its traceback in the log.
    """
    stderr = sys.stderr
    cache_numba_compilation()  # a job that builds a neighbour graph loads pynndescent's code instead of compiling it
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context(open(log_path, "w", buffering=1))
            stack.enter_context(contextlib.redirect_stdout(handle))
            stack.enter_context(contextlib.redirect_stderr(handle))
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
        )
        try:
            func(**kwargs)
        except ScsynthError as exc:
            log.error("%s", exc)
            print(f"scsynth error: {exc}", file=stderr)
            raise SystemExit(1) from None
        except Exception:
            log.exception("step %s failed", getattr(func, "__name__", func))  # the traceback, in the rule's log
            raise


# -- the workflow's rules call steps through one script (workflow_scripts/run_step.py) ------------------------
def import_step(spec: str) -> Callable[..., Any]:
    """The step a rule names in its ``step`` param: ``"package.module:function"``."""
    import importlib

    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ConfigError(f"step '{spec}': expected 'package.module:function'")
    func = getattr(importlib.import_module(module), name, None)
    if not callable(func):
        raise ConfigError(f"step '{spec}': module {module} has no function {name}")
    return func


def named_files(files: Any, *, what: str) -> dict[str, str | list[str]]:
    """``{name: path or [paths]}`` of a rule's input or output files (anything with ``items()`` over its names and
    ``len()`` over its files, as Snakemake's are); every file must have a name, the step's argument."""
    named = {name: str(value) if isinstance(value, (str, Path)) else [str(path) for path in value]
             for name, value in files.items()}  # fmt: skip
    counted = sum(1 if isinstance(value, str) else len(value) for value in named.values())
    if counted != len(files):
        raise ConfigError(f"{len(files) - counted} {what} file(s) without a name: name each after the step's "
                          "keyword argument")  # fmt: skip
    return named


def step_arguments(func: Callable[..., Any], *named: Mapping[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Keyword arguments of ``func`` from a rule's named inputs, outputs and params (``named``, in that order),
    plus ``threads`` when ``func`` takes it. A name given twice, or one ``func`` does not take, is a ConfigError
    naming the step, before the step runs."""
    import inspect

    kwargs: dict[str, Any] = {}
    for part in named:
        twice = sorted(set(part) & set(kwargs))
        if twice:
            raise ConfigError(f"step {func.__name__}: argument(s) {twice} given twice (inputs, outputs and params "
                              "share one namespace)")  # fmt: skip
        kwargs |= part
    parameters = inspect.signature(func).parameters
    if threads is not None and "threads" in parameters and "threads" not in kwargs:
        kwargs["threads"] = threads
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        raise ConfigError(f"step {func.__name__}: no argument(s) {unknown}; it takes {sorted(parameters)}")
    return kwargs


def call_step(
    *, step: str, inputs: Any, outputs: Any, params: Mapping[str, Any], threads: int | None = None, rule: str = ""
) -> None:
    """Run the step ``step`` names with a rule's named ``inputs``, ``outputs`` and ``params`` as its keyword
    arguments (:func:`named_files`, :func:`step_arguments`): what every rule's script does, inside
    :func:`run_logged`, so that a wrong name is a one-line error in the rule's log."""
    func = import_step(step)
    where = f"rule {rule}: " if rule else ""
    func(**step_arguments(func, named_files(inputs, what=f"{where}input"), named_files(outputs, what=f"{where}output"),
                          dict(params), threads=threads))  # fmt: skip


def _labelled_files(
    files: Mapping[str, Any] | Sequence[Any], labels: Sequence[str] | None, *, what: str, label: str, labels_of: str
) -> list[tuple[str, Any]] | None:
    """``(label, file)`` pairs of a list of files and the label of each (same order), or ``None`` when ``files``
    is already a mapping by label; ``label``/``labels_of`` word the errors (e.g. "name" / "their names")."""
    if labels is None:
        if not isinstance(files, Mapping):
            raise ConfigError(f"{what}: a list of files needs {labels_of}")
        return None
    if isinstance(files, Mapping):
        raise ConfigError(f"{what}: give files by {label} or as a list with {labels_of}, not both")
    files = list(files)
    if len(files) != len(labels):
        raise ConfigError(f"{what}: {len(files)} file(s) for {len(labels)} {label}(s) {list(labels)}")
    return list(zip(labels, files))


def by_name(files: Mapping[str, Any] | Sequence[Any], names: Sequence[str] | None, *, what: str) -> dict[str, Any]:
    """``{name: file}`` from a mapping, or from a list of files and the list of their ``names`` (a rule gives
    files as a named input or output and their names as a param, in the same order)."""
    pairs = _labelled_files(files, names, what=what, label="name", labels_of="their names")
    return dict(files) if pairs is None else dict(pairs)


def by_group(
    files: Mapping[str, Sequence[Any]] | Sequence[Any], groups: Sequence[str] | None, *, what: str
) -> dict[str, list[Any]]:
    """``{group: [files]}`` from a mapping, or from a list of files and the group of each (``groups``, same
    order: a summary's rule gives its inputs as one list and, as a param, e.g. the simulation of each file)."""
    pairs = _labelled_files(files, groups, what=what, label="group name", labels_of="the group of each")
    if pairs is None:
        return {group: list(paths) for group, paths in files.items()}
    out: dict[str, list[Any]] = {}
    for group, path in pairs:
        out.setdefault(group, []).append(path)
    return out


# -- data -----------------------------------------------------------------------------------------------------
def download_dataset(
    *,
    registry: str | Path,
    dataset: str,
    dest_dir: str | Path | None = None,
    manifest: str | Path | None = None,
    progress: bool = True,
) -> None:
    """Download every file of a ``source: url`` dataset and write ``dest_dir/manifest.json``; ``manifest`` (the
    workflow's output) names that file instead, its folder being ``dest_dir``."""
    from scsynth_core.data.registry import fetch_dataset_files, get_dataset, load_registry

    if manifest is not None:
        if Path(manifest).name != "manifest.json" or Path(dest_dir or Path(manifest).parent) != Path(manifest).parent:
            raise ConfigError(f"download {dataset}: manifest {manifest} must be manifest.json in dest_dir {dest_dir}")
        dest_dir = Path(manifest).parent
    if dest_dir is None:
        raise ConfigError(f"download {dataset}: give dest_dir (or the manifest file to write)")
    spec = get_dataset(load_registry(registry), dataset)
    if spec["source"] != "url":
        raise ConfigError(f"{registry}: dataset '{dataset}' has source '{spec['source']}', nothing to download")
    fetch_dataset_files(dataset, spec, dest_dir, progress=progress)


def import_dataset(
    *,
    registry: str | Path,
    dataset: str,
    output: str | Path,
    manifest: str | Path | None = None,
    local: str | Path | None = None,
    base_dir: str = ".",
) -> None:
    """Build ``raw.h5ad`` (integer counts, source labels) for a registered dataset. ``local``: the file of a
    ``source: local`` dataset as the workflow names it (an input, so that a changed file is imported again); it
    must be the registry's ``path``, which is read."""
    from scsynth_core.data.registry import get_dataset, load_raw_dataset, load_registry, read_manifest

    spec = get_dataset(load_registry(registry), dataset)
    if local is not None and Path(local) != Path(base_dir, spec.get("path", "")):
        raise ConfigError(f"{registry}: dataset '{dataset}' reads {spec.get('path')}, not {local}")
    files = None if manifest is None else read_manifest(manifest)
    adata = load_raw_dataset(dataset, spec, files=files, base_dir=base_dir)
    log.info("imported %s: %d cells x %d genes", dataset, adata.n_obs, adata.n_vars)
    atomic.write_h5ad(output, adata)


def prepare_dataset(
    *,
    input: str | Path,
    output: str | Path,
    recipe: str,
    label_key: str | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    stream: bool = False,
    sketch_cells: int = 50_000,
    chunk_rows: int = 10_000,
) -> None:
    """Run a preparation recipe: counts in ``X``, ``obs['cluster']``; see :mod:`scsynth_core.data.preprocess`.

    ``stream``: prepare without loading the matrix (:func:`scsynth_core.data.prepare_backed.prepare_backed`:
    ``sketch_cells`` clustered in memory, ``chunk_rows`` read at a time; recipe ``marouf`` only).
    """
    from scsynth_core.data.checks import check_counts, read_h5ad
    from scsynth_core.data.preprocess import prepare

    if stream:
        from scsynth_core.data.prepare_backed import prepare_backed

        record = prepare_backed(
            input,
            output,
            recipe=recipe,
            label_key=label_key,
            seed=seed,
            sketch_cells=sketch_cells,
            chunk_rows=chunk_rows,
            **dict(params or {}),
        )
        log.info("prepared with recipe %s, streamed from %s: %s", recipe, input, record)
        return
    adata = read_h5ad(input)
    check_counts(adata.X, where=f"{input} (X)")
    prepared = prepare(adata, recipe=recipe, label_key=label_key, seed=seed, **dict(params or {}))
    log.info(
        "prepared with recipe %s: %d cells x %d genes, %d clusters",
        recipe,
        prepared.n_obs,
        prepared.n_vars,
        prepared.obs["cluster"].nunique(),
    )
    atomic.write_h5ad(output, prepared)


def split_dataset(
    *,
    input: str | Path,
    output: str | Path,
    seed: int,
    test_fraction: float | None = None,
    test_cells: int | None = None,
    label_key: str = "cluster",
) -> None:
    """Write the balanced train/test split of a prepared dataset as an index file (cell, split)."""
    from scsynth_core.data.checks import check_labels, read_h5ad
    from scsynth_core.data.split import balanced_split, write_split

    adata = read_h5ad(input, backed=True)
    check_labels(adata, label_key, where=str(input))
    split = balanced_split(adata.obs[label_key], test_fraction=test_fraction, test_cells=test_cells, seed=seed)
    write_split(output, split)


def load_prepared(path: str | Path, split: str | Path | None = None, *, subset: str | None = None) -> ad.AnnData:
    """Read a prepared dataset, attach ``obs['split']`` from an index file and optionally keep one subset."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.split import apply_split, read_split

    adata = read_h5ad(path)
    if split is not None:
        adata = apply_split(adata, read_split(split))
    if subset is not None:
        if "split" not in adata.obs:
            raise ConfigError(f"{path}: selecting the '{subset}' cells needs a split file")
        adata = adata[adata.obs["split"] == subset].copy()
    return adata


def read_generated(path: str | Path) -> ad.AnnData:
    """Generated cells on the count/LSN scale the evaluations project from (log1p outputs mapped back)."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.preprocess import expression_scale

    return expression_scale(read_h5ad(path))


# -- models ---------------------------------------------------------------------------------------------------
def train_model(
    *,
    prepared: str | Path,
    output: str | Path,
    train_log: str | Path,
    model: str,
    split: str | Path | None = None,
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    label_key: str | None = "cluster",
    seed: int = 0,
    device: str = "auto",
    max_steps: int | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    threads: int | None = None,
    stream: bool = False,
) -> None:
    """Train one model on the training cells and save it with its training log.

    ``stream``: models that read minibatches by rows (``reads_rows``: scGAN, cscGAN) read the training cells
    from ``prepared`` on disk instead of loading them (:func:`scsynth_core.data.backed.open_cells`); the others
    load them as usual.
    """
    set_threads(threads)
    from scsynth_core.data.backed import open_cells
    from scsynth_core.models import get_model_class
    from scsynth_core.models.training import history_frame

    klass = get_model_class(model)
    instance = klass(preset, **dict(params or {}))  # checks preset and hyperparameters before reading data
    subset = "train" if split is not None else None
    if stream and klass.reads_rows:
        adata = open_cells(prepared, split, subset=subset)
    else:
        if stream:
            log.warning("%s reads its training cells into memory (only scgan and cscgan stream from disk)", model)
        adata = load_prepared(prepared, split, subset=subset)
    use_labels = label_key if (klass.conditional or klass.labels_optional) else None
    t0 = time.perf_counter()
    try:
        history = instance.fit(
            adata,
            label_key=use_labels,
            seed=seed,
            device=device,
            max_steps=max_steps,
            progress=progress,
            checkpoint=checkpoint,
        )
    finally:
        if hasattr(adata, "close"):  # cells read from disk hold the file open
            adata.close()
    log.info("trained %s on %d cells in %.1f s", model, adata.n_obs, time.perf_counter() - t0)
    atomic.write_tsv(train_log, history_frame(history))
    instance.save(output)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)


def parse_label_counts(text: str) -> dict[str, int]:
    """``"B=100,T=50"`` -> ``{"B": 100, "T": 50}`` (the CLI's ``--labels``)."""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, sep, count = item.rpartition("=")
        if not sep or not label or not count.isdigit():
            raise ConfigError(f"--labels: expected LABEL=COUNT[,LABEL=COUNT...], got '{item}'")
        out[label] = int(count)
    return out


def generate_cells(
    *,
    model: str | Path,
    output: str | Path,
    n_cells: int | None = None,
    labels: Mapping[str, int] | Sequence[str] | None = None,
    like: str | Path | None = None,
    like_split: str | Path | None = None,
    like_subset: str | None = None,
    target: str | None = None,
    target_of: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 10_000,
    threads: int | None = None,
) -> None:
    """Generate cells from a saved model.

    The number of cells is ``n_cells``, or the size of a reference set (``like`` + optional split/subset, e.g.
    the test cells). Conditional models given a reference set generate its label composition, except models
    whose labelled cells are filtered holistic samples (ACTIVA), which generate holistically. ``target`` (a
    cluster, or ``"auto"`` = the second largest cluster of the prepared dataset ``target_of``) asks for
    ``n_cells`` cells of that one cluster, as the augmentation experiment does.
    """
    from scsynth_core.models import load_model

    set_threads(threads)
    instance = load_model(model, device=device)
    if like is not None:
        reference = load_prepared(like, like_split, subset=like_subset)
        n_cells = reference.n_obs
        imposes_labels = instance.categories is not None and not instance.labels_by_filtering
        if labels is None and imposes_labels and instance.label_key in reference.obs:
            wanted = reference.obs[instance.label_key].astype(str)
            known = set(instance.categories)
            labels = [label for label in wanted if label in known]
            n_cells = len(labels)
    if target is not None:
        from scsynth_core.data.checks import read_h5ad
        from scsynth_core.data.split import resolve_target_cluster

        if target == "auto":
            target = resolve_target_cluster(read_h5ad(target_of, backed=True).obs["cluster"])
        if n_cells is None:
            raise ConfigError(f"generate: target '{target}' needs n_cells (how many cells of it to generate)")
        labels = {str(target): n_cells}  # checked by the model: 2.5 is an error, not 2 cells
    if n_cells is None and labels is not None:
        n_cells = sum(labels.values()) if isinstance(labels, Mapping) else len(labels)
    if n_cells is None:
        raise ConfigError("generate: give n_cells, labels or a reference dataset (like=...)")
    # Streamed to disk chunk by chunk: memory stays bounded by batch_size cells whatever n_cells is.
    t0 = time.perf_counter()
    elapsed = instance.sample_to_h5ad(output, n_cells, labels=labels, seed=seed, batch_size=batch_size, progress=True)
    log.info(
        "generated %d cells in %.2f s (%.0f cells/s), %.2f s with writing",
        n_cells,
        elapsed,
        n_cells / max(elapsed, 1e-9),
        time.perf_counter() - t0,
    )


# -- tables ---------------------------------------------------------------------------------------------------
def concat_tables(*, inputs: Sequence[str | Path], output: str | Path) -> None:
    """Concatenate TSV tables with the same columns (e.g. per-replicate F1 tables into one)."""
    import pandas as pd

    atomic.write_tsv(output, pd.concat([pd.read_csv(p, sep="\t") for p in inputs], ignore_index=True))
