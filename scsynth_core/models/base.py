"""The model interface, the registry and generation helpers shared by every model family.

Every family subclasses :class:`GenerativeModel` and implements ``_fit``, ``_sample_chunk``,
``_get_state`` and ``_set_state``. The base class owns what must behave the same everywhere: presets and
overrides, input checks, label handling for conditional sampling, chunked generation into a sparse AnnData
(in memory or streamed to a file) through the sampling hooks, and the checkpoint file format (one ``torch.save``
of plain tensors and Python values, loadable with ``weights_only=True``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.params import check_flag  # noqa: F401 - re-exported for older imports
from scsynth_core.models.specs import FLAGS, SPECS, ModelSpec, model_spec
from scsynth_core.models.specs.kit import preset_params

if TYPE_CHECKING:
    import anndata as ad

_log = logging.getLogger("scsynth")

#: Registry name -> "module:Class", from the torch-free specs. Families are imported only when a name is used.
_REGISTRY: dict[str, str] = {name: spec.target for name, spec in SPECS.items()}

#: Representations a model may train on; transforms live in :mod:`scsynth_core.data.preprocess`.
REPRESENTATIONS = ("counts", "lsn", "log1p")


def available_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[GenerativeModel]:
    """Return the class registered as ``name``; unknown names raise a :class:`ConfigError` listing the known ones."""
    module, cls = model_spec(name).target.split(":")
    return getattr(importlib.import_module(module), cls)


class _LazyRegistry(Mapping):
    """Read-only mapping name -> class that imports a family on first access."""

    def __getitem__(self, name: str) -> type[GenerativeModel]:
        if name not in _REGISTRY:
            raise KeyError(name)
        return get_model_class(name)

    def __iter__(self):
        return iter(available_models())

    def __len__(self) -> int:
        return len(_REGISTRY)


MODELS: Mapping[str, type[GenerativeModel]] = _LazyRegistry()


@dataclass
class SampledCells:
    """What ``_sample_chunk`` may return instead of a bare matrix: the cells and annotations of each of them.

    ``obs``: column -> one value per cell; numbers, or for ``"cluster"`` labels among the model's categories
    (e.g. the type a classifier assigns to each generated cell). ``obsm``: key -> one row per cell (2-d, e.g. the
    codes the cells were generated from). A family returns the same keys for every chunk of a call.
    """

    X: Any
    obs: dict[str, Any] = field(default_factory=dict)
    obsm: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SamplingCall:
    """One :meth:`GenerativeModel.sample` or :meth:`~GenerativeModel.sample_to_h5ad` call as the sampling hooks
    see it (``self._sampling`` while its chunks are generated).

    ``labels``: one per cell (requested, or drawn for holistic generation), or ``None``; ``options``: the
    family's own sampling arguments as its ``_sampling_options`` checked them (e.g. ``codes``); ``state``: a
    family's bookkeeping across the chunks of this call (e.g. cells drawn but not yet used); ``uns``: entries added
    to ``uns['scsynth']`` after the last chunk.
    """

    n_cells: int
    labels: np.ndarray | None
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    uns: dict[str, Any] = field(default_factory=dict)


class GenerativeModel(ABC):
    """A generative model of single-cell expression profiles.

    Subclasses set ``name`` (their flags, presets and hyperparameter types come from the spec registered as
    ``name`` in :mod:`scsynth_core.models.specs`, checked here at construction) and implement the four private
    hooks.
    Generation is defined here once (:meth:`sample` in memory, :meth:`sample_to_h5ad` streamed): for every
    chunk of at most ``batch_size`` cells it calls the family's ``_sample_chunk(n, labels, rng)``, after
    ``_start_sampling(seed)`` once per call.
    ``_sample_chunk`` returns the cells, or :class:`SampledCells` with per-cell annotations (``obs``, ``obsm``);
    keyword arguments of ``sample`` beyond the common ones (e.g. ``codes``) are the family's, checked by its
    ``_sampling_options`` and kept in the call; a family that
    generates label-specific cells by drawing and rejecting (``labels_by_filtering``) keeps the cells it drew
    but did not use yet, and what to record in ``uns``, in the call's :class:`SamplingCall` (``self._sampling``).
    Hyperparameters come from a named preset updated by keyword overrides (unknown keys are rejected):

    - ``"paper"``: the paper's settings and training length;
    - ``"workstation"``: the best measured settings for at most 10 minutes of training on 2 CPU cores and up to
      5,000 cells x 2,000 genes (the paper's length where that fits; the paper preset itself for families that
      define none); it may change steps and optimiser settings, never the method;
    - ``"demo"``: a tiny schedule for tests and the smoke run (same method, not realistic cells).

    Parameters
    ----------
    preset
        Name of a preset in ``presets``.
    **overrides
        Hyperparameters replacing the preset's values.
    """

    name: ClassVar[str]
    representation: ClassVar[str]
    conditional: ClassVar[bool] = False
    #: Conditional models that can also be fitted without labels (then they generate holistically only).
    labels_optional: ClassVar[bool] = False
    #: Label-specific cells are holistic samples filtered by a classifier (ACTIVA): holistic sampling draws no
    #: labels (``_sample_chunk`` may annotate the cells), and a reference set's composition is not imposed (the
    #: paper generates holistically for its realism metrics).
    labels_by_filtering: ClassVar[bool] = False
    #: Minibatches are read as ``X[rows]``, so ``fit`` also takes cells whose ``X`` stays on disk (scGAN, cscGAN).
    reads_rows: ClassVar[bool] = False
    #: The hyperparameter that sizes the latent code (None: no latent representation to score).
    latent_param: ClassVar[str | None] = None
    presets: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}, "demo": {}}
    #: The registered model's spec: flags, presets and hyperparameter types (None for unregistered classes).
    spec: ClassVar[ModelSpec | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A registered class takes its flags and presets from its spec (scsynth_core.models.specs), the one place
        # the config check also reads them; subclasses of it (tests) inherit them.
        spec = SPECS.get(cls.__dict__.get("name", ""))
        if spec is not None and spec.target == f"{cls.__module__}:{cls.__qualname__}":
            cls.spec = spec
            for flag in FLAGS:
                setattr(cls, flag, getattr(spec, flag))
            cls.presets = {preset: dict(values) for preset, values in spec.presets.items()}
        # Families whose paper settings already train in minutes on a CPU have no workstation preset of their own:
        # for them the workstation preset IS the paper's.
        if "paper" in cls.presets and "workstation" not in cls.presets:
            cls.presets = {**cls.presets, "workstation": dict(cls.presets["paper"])}

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        self.preset = preset
        self.params: dict[str, Any] = preset_params(self.name, self.presets, preset, overrides)
        if self.spec is not None:  # every declared hyperparameter, before any data are read
            self.spec.check(self.params, preset)
        self.var_names: list[str] | None = None
        self.label_key: str | None = None
        self.categories: list[str] | None = None
        self.class_frequencies: np.ndarray | None = None
        self.n_train: int = 0
        self.seed: int | None = None
        #: How training ended (steps, stop reason, kept weights, best monitored step), set by ``fit``.
        self.training_summary: dict[str, Any] = {}
        #: The sampling call in progress (set by the base class around the chunks of one call).
        self._sampling: SamplingCall | None = None

    # -- public API -------------------------------------------------------------------------------------------
    def fit(
        self,
        adata: ad.AnnData,
        *,
        label_key: str | None = None,
        seed: int = 0,
        device: str = "auto",
        max_steps: int | None = None,
        progress: bool = True,
        checkpoint: str | Path | None = None,
    ) -> dict[str, list]:
        """Train on ``adata`` (raw counts in ``X``) and return the training history (column -> values).

        ``adata`` may also be cells whose ``X`` stays on disk (:func:`scsynth_core.data.backed.open_cells`) for the
        families that read minibatches as ``X[rows]`` (``reads_rows``: scGAN, cscGAN); their counts are checked a
        chunk of rows at a time. ``checkpoint``: a file to save training state to periodically and to resume from
        if it exists.
        """
        from scsynth_core.data import checks
        from scsynth_core.data.backed import check_counts_chunked, is_row_source

        where = f"model '{self.name}' training data"
        checks.check_not_empty(adata, where=where)
        if is_row_source(adata.X):
            if not self.reads_rows:
                raise ConfigError(
                    f"model '{self.name}' trains from memory only: cells read from disk need a model that reads "
                    "minibatches by rows (scgan, cscgan)"
                )
            check_counts_chunked(adata.X, where=f"{where} ({adata.X.path}: X)")
        else:
            checks.check_counts(adata.X, where=f"{where} (X)")
        if self.conditional and label_key is None and not self.labels_optional:
            raise ConfigError(f"model '{self.name}' is conditional: a label_key (obs column) is required")
        if label_key is not None:
            checks.check_labels(adata, label_key, where=where)
            checks.check_label_values(adata.obs[label_key], label_key, where=where, conditional=self.conditional)
            labels = adata.obs[label_key].astype(str)
            self.categories = sorted(labels.unique())
            counts = labels.value_counts().reindex(self.categories).to_numpy(dtype=float)
            self.class_frequencies = counts / counts.sum()
        self.label_key = label_key
        self.var_names = [str(v) for v in adata.var_names]
        self.n_train = int(adata.n_obs)
        self.seed = int(seed)
        return self._fit(
            adata, seed=int(seed), device=device, max_steps=max_steps, progress=progress, checkpoint=checkpoint
        )

    def sample(
        self,
        n_cells: int,
        *,
        labels: Sequence[str] | Mapping[str, int] | None = None,
        seed: int = 0,
        batch_size: int = 10_000,
        progress: bool = False,
        **options: Any,
    ) -> ad.AnnData:
        """Generate ``n_cells`` cells in chunks of ``batch_size``, all held in memory (see :meth:`sample_to_h5ad`).

        ``labels``: ``None`` (holistic generation; conditional models draw labels with the training
        frequencies), a sequence of ``n_cells`` labels, or a dict ``{label: count}`` summing to ``n_cells``.
        ``options``: the family's own arguments (``codes`` of
        :class:`~scsynth_core.models.capabilities.CodeConditioned`). Returns an AnnData with sparse ``X`` in the
        model's output space, the training genes, ``obs['cluster']`` for conditional models, the family's ``obsm``
        annotations and ``uns['scsynth']`` describing the run.
        """
        import anndata as ad

        call, batch_size, rng = self._plan_sampling(n_cells, labels, seed, batch_size, options)
        with self._in_call(call):
            chunks = list(self._generate_chunks(call, rng, batch_size, progress))
        X = sp.vstack([chunk.X for chunk in chunks], format="csr")
        annotations = {key: np.concatenate([chunk.obs[key] for chunk in chunks]) for key in chunks[0].obs}
        return ad.AnnData(
            X=X,
            obs=self._generated_obs(0, call.n_cells, call.labels, annotations),
            var=pd.DataFrame(index=self.var_names),
            uns=self._generated_uns(call),
            obsm={key: np.concatenate([chunk.obsm[key] for chunk in chunks]) for key in chunks[0].obsm},
        )

    def sample_to_h5ad(
        self,
        path: str | Path,
        n_cells: int,
        *,
        labels: Sequence[str] | Mapping[str, int] | None = None,
        seed: int = 0,
        batch_size: int = 10_000,
        progress: bool = False,
        **options: Any,
    ) -> float:
        """Generate as :meth:`sample` does and write the cells to the h5ad ``path`` chunk by chunk.

        Memory is bounded by one chunk of ``batch_size`` cells (plus 8 bytes per cell for the labels of
        conditional models, what a filtering family keeps between chunks, and the ``options`` given, e.g.
        ``codes``), whatever ``n_cells`` is; the file holds the same ``X``, ``obs``, ``obsm``, ``var`` and ``uns``
        that writing ``sample(...)`` gives for the same arguments, with ``uns['scsynth']['generation_seconds']``
        (time spent generating, writing excluded) added. Written atomically; the expected size is logged after the
        first chunk. Returns the generation seconds.
        """
        import time

        from scsynth_core.atomic import atomic_path
        from scsynth_core.data.h5ad_stream import H5adStreamWriter

        call, batch_size, rng = self._plan_sampling(n_cells, labels, seed, batch_size, options)
        seconds = 0.0
        with (
            atomic_path(path) as tmp,
            H5adStreamWriter(tmp, pd.DataFrame(index=self.var_names)) as out,
            self._in_call(call),
        ):
            chunks = self._generate_chunks(call, rng, batch_size, progress)
            while True:
                t0 = time.perf_counter()
                chunk = next(chunks, None)
                seconds += time.perf_counter() - t0
                if chunk is None:
                    break
                if out.n_rows == 0:
                    _log_expected_size(path, chunk.X, call.n_cells)
                stop = out.n_rows + chunk.X.shape[0]
                out.append(chunk.X, self._generated_obs(out.n_rows, stop, call.labels, chunk.obs), chunk.obsm)
            uns = self._generated_uns(call)
            uns["scsynth"]["generation_seconds"] = round(seconds, 3)
            out.finish(uns)
        return seconds

    def describe(self) -> dict[str, Any]:
        """Model name, representation, preset, hyperparameters and training facts (recorded in outputs)."""
        return {
            "model": self.name,
            "representation": self.representation,
            "conditional": self.conditional,
            "preset": self.preset,
            "params": dict(self.params),
            "n_train": self.n_train,
            "train_seed": self.seed,
            "label_key": self.label_key,
            "training": dict(self.training_summary),
        }

    def save(self, path: str | Path) -> None:
        """Save hyperparameters, genes, labels and the fitted state in one file (written atomically)."""
        import torch

        from scsynth_core.atomic import atomic_path

        if self.var_names is None:
            raise ConfigError(f"model '{self.name}' is not fitted: nothing to save")
        payload = {
            "format": 1,
            "model": self.name,
            "preset": self.preset,
            "params": self.params,
            "var_names": self.var_names,
            "label_key": self.label_key,
            "categories": self.categories,
            "class_frequencies": None if self.class_frequencies is None else torch.as_tensor(self.class_frequencies),
            "n_train": self.n_train,
            "seed": self.seed,
            "training": dict(self.training_summary),
            "state": self._get_state(),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> GenerativeModel:
        """Load a model saved by :meth:`save` (any family when called on the base class).

        A file that disagrees with itself (missing keys, gene list vs weights, categories vs class frequencies,
        weights of another family) raises :class:`DataError` naming the file.
        """
        import torch

        from scsynth_core.data.checks import check_model_payload

        path = Path(path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            name = payload["model"]
        except FileNotFoundError:
            raise DataError(f"{path}: model file not found") from None
        except Exception as exc:  # noqa: BLE001 - unpickling a damaged or foreign file raises many types
            raise DataError(f"{path}: not a scsynth model file ({type(exc).__name__}: {exc})") from None
        check_model_payload(payload, path)
        try:
            klass = get_model_class(name)
            model = klass(payload["preset"], **payload["params"])
        except ConfigError as exc:
            raise DataError(f"{path}: {exc}") from None
        if cls is not GenerativeModel and not issubclass(klass, cls):
            raise DataError(f"{path}: holds model '{name}', not '{cls.name}'")
        model.var_names = list(payload["var_names"])
        model.label_key = payload["label_key"]
        model.categories = payload["categories"]
        freqs = payload["class_frequencies"]
        model.class_frequencies = None if freqs is None else freqs.numpy()
        model.n_train = payload["n_train"]
        model.seed = payload["seed"]
        model.training_summary = dict(payload.get("training") or {})
        try:
            model._set_state(payload["state"], device=device)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            # load_state_dict reports a shape or key mismatch as a RuntimeError; other RuntimeErrors (CUDA) are not ours
            if isinstance(exc, RuntimeError) and "state_dict" not in str(exc):
                raise
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise DataError(f"{path}: the saved weights do not fit model '{name}' ({detail[:300]})") from None
        return model

    # -- hooks for subclasses ---------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        """Train on checked data; return the history."""

    def _sampling_options(self, n_cells: int, options: dict[str, Any]) -> dict[str, Any]:
        """Check the family's own keyword arguments of one ``sample`` call (``n_cells`` already checked) and
        return them as the chunks will use them (``self._sampling.options``); this family takes none."""
        if options:
            raise ConfigError(f"model '{self.name}': sample() takes no argument(s) {', '.join(sorted(options))}")
        return {}

    def _start_sampling(self, seed: int) -> None:
        """Called once before the chunks of one ``sample`` call (e.g. to seed torch); ``self._sampling`` holds the
        call."""

    @abstractmethod
    def _sample_chunk(self, n: int, labels: np.ndarray | None, rng: np.random.Generator):
        """Return ``n`` generated cells (sparse or dense, n x genes) for the given labels, or them with per-cell
        annotations as :class:`SampledCells`."""

    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """The fitted state as plain tensors and Python values."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        """Restore what :meth:`_get_state` returned."""

    # -- helpers ----------------------------------------------------------------------------------------------
    def _plan_sampling(
        self, n_cells, labels, seed, batch_size, options=None
    ) -> tuple[SamplingCall, int, np.random.Generator]:
        """Check a sampling call's arguments; return the call, ``batch_size`` and the random generator."""
        if self.var_names is None:
            raise ConfigError(f"model '{self.name}' is not fitted: call fit() or load() before sample()")
        n_cells = _as_count(n_cells, "n_cells", minimum=1)
        batch_size = _as_count(batch_size, "batch_size", minimum=1)
        options = self._sampling_options(n_cells, dict(options or {}))
        rng = np.random.default_rng(seed)
        call = SamplingCall(n_cells, self._resolve_labels(n_cells, labels, rng), int(seed), options)
        return call, batch_size, rng

    @contextlib.contextmanager
    def _in_call(self, call: SamplingCall) -> Iterator[None]:
        """``self._sampling`` is ``call`` while its chunks are generated (and written)."""
        self._sampling = call
        try:
            yield
        finally:
            self._sampling = None

    def _generate_chunks(self, call: SamplingCall, rng, batch_size: int, progress: bool) -> Iterator[SampledCells]:
        """Yield the generated cells (float32 CSR) and their annotations in chunks of ``batch_size`` rows, in
        order."""
        from tqdm.auto import tqdm

        self._start_sampling(call.seed)
        n_cells, cell_labels = call.n_cells, call.labels
        with tqdm(total=n_cells, desc=f"generate {self.name}", unit="cells", disable=not progress) as bar:
            for start in range(0, n_cells, batch_size):
                stop = min(start + batch_size, n_cells)
                chunk_labels = None if cell_labels is None else cell_labels[start:stop]
                chunk = self._sample_chunk(stop - start, chunk_labels, rng)
                if not isinstance(chunk, SampledCells):
                    chunk = SampledCells(chunk)
                chunk.X = sp.csr_matrix(chunk.X, dtype=np.float32)
                yield chunk
                bar.update(stop - start)

    def _generated_obs(
        self, start: int, stop: int, cell_labels, annotations: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """``obs`` rows ``start:stop`` of generated cells: their names, their labels if any, and the chunk's
        annotations (``"cluster"`` as labels among the model's categories, other columns as given)."""
        obs = pd.DataFrame(index=[f"{self.name}_{i}" for i in range(start, stop)])
        if cell_labels is not None:
            obs["cluster"] = pd.Categorical(cell_labels[start:stop], categories=self.categories)
        for key, values in (annotations or {}).items():
            obs[key] = pd.Categorical(values, categories=self.categories) if key == "cluster" else np.asarray(values)
        return obs

    def _generated_uns(self, call: SamplingCall) -> dict[str, Any]:
        return {"scsynth": self.describe() | {"seed": call.seed, "n_generated": call.n_cells} | call.uns}

    def _resolve_labels(self, n_cells: int, labels, rng: np.random.Generator) -> np.ndarray | None:
        """Turn the ``labels`` argument of :meth:`sample` into one label per cell (or ``None``)."""
        if labels is None:
            if self.categories is None or self.labels_by_filtering:
                return None
            # Holistic generation from a conditional model: labels drawn with the training frequencies.
            idx = rng.choice(len(self.categories), size=n_cells, p=self.class_frequencies)
            return np.asarray(self.categories, dtype=object)[idx]
        if not self.conditional:
            raise ConfigError(f"model '{self.name}' is not conditional: sample() takes no labels")
        if self.categories is None:
            raise ConfigError(f"model '{self.name}' was fitted without labels: sample() takes no labels")
        if isinstance(labels, Mapping):
            counts = [_as_count(c, f"labels dict: count of '{k}'", minimum=0) for k, c in labels.items()]
            if sum(counts) != n_cells:
                raise ConfigError(f"labels dict asks for {sum(counts)} cells in total, but n_cells is {n_cells}")
            # One shared string object per label: 8 bytes per cell, whatever n_cells is.
            out = np.repeat(np.asarray([str(k) for k in labels], dtype=object), counts)
        else:
            out = np.asarray([str(v) for v in labels], dtype=object)
            if len(out) != n_cells:
                raise ConfigError(f"got {len(out)} labels for {n_cells} cells")
        unknown = sorted(set(out) - set(self.categories))
        if unknown:
            raise ConfigError(
                f"model '{self.name}': unknown label(s) {', '.join(unknown)} (trained on: {', '.join(self.categories)})"
            )
        return out


def _as_count(value: Any, what: str, *, minimum: Literal[0, 1]) -> int:
    """``value`` as an int >= ``minimum``; whole floats pass (1e6 from a config), 2.5, bools and strings do not."""
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole or int(value) < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise ConfigError(f"{what} must be {kind} integer, got {value!r}")
    return int(value)


def _log_expected_size(path: str | Path, first: sp.csr_matrix, n_cells: int) -> None:
    """Log the size ``n_cells`` cells as dense as the first chunk will take, and warn if the disk has less."""
    import shutil

    from scsynth_core.data.h5ad_stream import estimated_bytes

    size = estimated_bytes(first, n_cells)
    density = first.nnz / max(first.shape[0] * first.shape[1], 1)
    _log.info(
        "writing %d cells x %d genes to %s: about %s before compression (%.1f%% non-zero in the first chunk)",
        n_cells,
        first.shape[1],
        path,
        _human_bytes(size),
        100 * density,
    )
    free = shutil.disk_usage(Path(path).absolute().parent).free
    if size > free:
        _log.warning("%s: only %s free, the output may need up to %s", path, _human_bytes(free), _human_bytes(size))


def _human_bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def load_model(path: str | Path, device: str = "auto") -> GenerativeModel:
    """Load any saved scsynth model."""
    return GenerativeModel.load(path, device=device)


def csr_to_state(X) -> dict[str, Any]:
    """A CSR matrix as plain tensors (so checkpoints load with ``weights_only=True``)."""
    import torch

    X = sp.csr_matrix(X)
    return {
        "data": torch.as_tensor(X.data),
        "indices": torch.as_tensor(X.indices.astype(np.int64)),
        "indptr": torch.as_tensor(X.indptr.astype(np.int64)),
        "shape": list(X.shape),
    }


def csr_from_state(state: Mapping[str, Any]) -> sp.csr_matrix:
    """Inverse of :func:`csr_to_state`."""
    return sp.csr_matrix(
        (state["data"].numpy(), state["indices"].numpy(), state["indptr"].numpy()), shape=tuple(state["shape"])
    )
