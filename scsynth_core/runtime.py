"""Process settings every step needs: the thread budget the scheduler gave a job, a headless matplotlib,
figures saved atomically, and numba's on-disk cache for the neighbour-graph libraries."""

from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path

from scsynth_core import atomic


def set_threads(threads: int | None) -> None:
    """Use the cores the scheduler gave this job, not every core of the node."""
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))  # BLAS/OpenMP of numpy, scipy and scikit-learn too


def use_agg() -> None:
    """Draw without a display (cluster nodes have none)."""
    import matplotlib

    matplotlib.use("Agg")


def save_figure(fig, output: str | Path) -> None:
    """Save a Figure atomically (format from the suffix) and free it."""
    import matplotlib.pyplot as plt

    with atomic.atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=150, format=Path(output).suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)


def cache_numba_compilation() -> bool:
    """Let numba keep on disk the machine code it compiles for pynndescent and umap-learn; returns whether it will.

    Every scanpy neighbour graph (clustering, UMAP) imports umap-learn, which imports pynndescent, whose ~350
    numba functions are compiled when imported and not cached (10 s per process on a free 2-core machine, over
    40 s under load), so each workflow job paid it again. This turns on numba's own cache (``cache=True``, keyed
    on each function's source file, signature and CPU; stored beside the source or in ``NUMBA_CACHE_DIR``) for
    the functions of those two packages: the same machine code runs, loaded instead of compiled. numba itself is
    imported only when one of them is. It must run before they are imported (it does nothing after);
    ``SCSYNTH_NUMBA_CACHE=0`` turns it off.
    """
    if os.environ.get("SCSYNTH_NUMBA_CACHE", "1") == "0" or _CACHED_PACKAGES & sys.modules.keys():
        return False
    if not any(isinstance(finder, _CacheNumbaFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _CacheNumbaFirst())
    return True


#: The packages whose numba functions are cached: umap-learn imports pynndescent.
_CACHED_PACKAGES = {"pynndescent", "umap"}


class _CacheNumbaFirst(importlib.abc.MetaPathFinder):
    """Before pynndescent or umap is imported, make numba's decorators cache by default (then step aside)."""

    def find_spec(self, name, path=None, target=None):
        if name in _CACHED_PACKAGES:
            sys.meta_path.remove(self)
            import numba

            numba.njit, numba.jit = _caching(numba.njit), _caching(numba.jit)
        # returns None: the usual finders then import the package


def _caching(decorator):
    """``decorator`` with ``cache=True`` unless the caller says otherwise (bare and called forms alike)."""

    def cached(*args, **kwargs):
        kwargs.setdefault("cache", True)
        return decorator(*args, **kwargs)

    return cached
