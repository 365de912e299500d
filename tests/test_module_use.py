"""scsynth used from elsewhere: as a Snakemake `module` of another project, and as an installed wheel.

The workflow finds its own files (schema, registry, default config) relative to its own folder, so a project in
another directory can declare it as a module with a small config of its own; the version lives in one place
(scsynth_core.__version__), which pyproject.toml reads.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import scsynth_core
from scsynth_core.config import workflow_file
from scsynth_core.errors import ConfigError
from workflow_utils import REPO, SNAKEMAKE, job_stats

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

# The including project's Snakefile and its own config: only what it changes (realism with one baseline, no
# augmentation or pilot section), the rest comes from the module's config/config.yaml.
HOST_SNAKEFILE = f"""\
configfile: "host_config.yaml"


module scsynth:
    snakefile:
        "{REPO / "Snakefile"}"
    config:
        config


use rule * from scsynth as scsynth_*
"""
HOST_CONFIG = "experiments: [realism]\nrealism: {datasets: [pbmc68k_demo], models: [upsample], embeddings: []}\n"


def test_workflow_dry_runs_as_a_module_of_another_project(tmp_path):
    host = tmp_path / "project"
    host.mkdir()
    (host / "Snakefile").write_text(HOST_SNAKEFILE)
    (host / "host_config.yaml").write_text(HOST_CONFIG)
    proc = subprocess.run(
        [*SNAKEMAKE, "-n", "--cores", "1"], cwd=host, capture_output=True, text=True, timeout=300, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    stats = job_stats(out)
    # every rule is the module's, renamed; one run per model, outputs in the host's working directory
    assert all(rule.startswith("scsynth_") for rule in stats if rule != "total"), stats
    assert stats["scsynth_train_model"] == 1 and stats["scsynth_evaluate_real_control"] == 1, stats
    assert "scsynth_downsample_cluster" not in stats and "scsynth_pilot_reference" not in stats, stats
    assert "output: results/realism/pbmc68k_demo/upsample/seed0/model.pt" in out
    assert not (host / "config").exists()  # nothing copied next to the host's Snakefile


def test_workflow_file_prefers_the_working_directory(tmp_path, monkeypatch):
    workflow_dir = tmp_path / "workflow"
    (workflow_dir / "config").mkdir(parents=True)
    (workflow_dir / "config" / "datasets.yaml").write_text("{}\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # Not in the working directory: the workflow's own file.
    assert workflow_file("registry", "config/datasets.yaml", workflow_dir) == str(
        workflow_dir / "config" / "datasets.yaml"
    )
    # The user's own file wins, and keeps the path as given (the rules' parameters stay the same).
    (work / "config").mkdir()
    (work / "config" / "datasets.yaml").write_text("{}\n")
    assert workflow_file("registry", "config/datasets.yaml", workflow_dir) == "config/datasets.yaml"
    absolute = str(tmp_path / "elsewhere.yaml")
    assert workflow_file("registry", absolute, workflow_dir) == absolute  # absolute: as given, even if missing
    with pytest.raises(ConfigError, match=r"config: registry: 'mine\.yaml' exists neither in the working directory"):
        workflow_file("registry", "mine.yaml", workflow_dir)


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def test_version_has_one_source():
    project = _pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "scsynth_core.__version__"}
    # the installed metadata (editable install of this checkout) agrees
    assert importlib.metadata.version("scsynth") == scsynth_core.__version__


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    """Build a wheel from a copy of the package sources, install it (no dependencies: those of this environment
    are put on the path) into a fresh venv, and run `scsynth` from a folder outside the checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "scsynth_core", src / "scsynth_core", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"scsynth-{scsynth_core.__version__}-py3-none-any.whl"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    # The dependencies: this environment's site-packages as a plain path entry. Its .pth files (the editable
    # install of the checkout among them) are not read from there, so scsynth_core can only come from the wheel.
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True, timeout=120)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args: str) -> str:
        proc = subprocess.run(args, cwd=outside, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    where = run(str(python), "-c", "import scsynth_core; print(scsynth_core.__file__)")
    assert where.startswith(str(venv)), where
    assert run(str(venv / "bin" / "scsynth"), "--version").strip() == f"scsynth {scsynth_core.__version__}"
    listed = {line.split("\t")[0] for line in run(str(venv / "bin" / "scsynth"), "models").splitlines()}
    assert {"upsample", "noise", "scgan", "scvi_posterior"} <= listed, listed
