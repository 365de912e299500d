"""scsynth_core.runtime: numba's cache for the neighbour-graph libraries (run in fresh interpreters: it changes
numba's decorators for the whole process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

PROBE = """
import sys
from scsynth_core import runtime
runtime._CACHED_PACKAGES = {"fake_nn"}  # stands for pynndescent/umap, which take 10-40 s to import
print(runtime.cache_numba_compilation(), "numba" in sys.modules)
import fake_nn
print(type(fake_nn.plus_one._cache).__name__, type(fake_nn.times_two._cache).__name__, fake_nn.plus_one(2.0))
"""


def _probe(tmp_path, **env) -> list[str]:
    (tmp_path / "fake_nn.py").write_text(
        textwrap.dedent("""
        import numba

        @numba.njit
        def plus_one(x):
            return x + 1.0

        @numba.njit("f8(f8)", cache=False)  # a caller's explicit choice is kept
        def times_two(x):
            return 2.0 * x
    """)
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), **env},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_the_packages_functions_are_cached_and_numba_imported_only_with_them(tmp_path):
    assert _probe(tmp_path) == ["True", "False", "FunctionCache", "NullCache", "3.0"]
    assert any((tmp_path / "cache").rglob("*.nbi"))  # the compiled code is on disk for the next process


def test_switched_off_numba_compiles_as_before(tmp_path):
    assert _probe(tmp_path, SCSYNTH_NUMBA_CACHE="0") == ["False", "False", "NullCache", "NullCache", "3.0"]
