"""scsynth used from elsewhere: as a Snakemake `module` of another project, and as an installed wheel.

The workflow finds its own files (schema, registry, default config) relative to its own folder, so a project in
another directory can declare it as a module with a small config of its own; the version lives in one place
(scsynth_core.__version__), which pyproject.toml reads.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
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


def _fresh_venv(path: Path) -> Path:
    """A venv without pip whose dependencies are this environment's site-packages as a plain path entry. Its .pth
    files (the editable install of the checkout among them) are not read from there, so scsynth_core can only come
    from what is installed into the venv; pip runs from that path too (`python -m pip`). Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    python = path / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _post_deploy(venv: Path, cwd: Path, **variables: str) -> subprocess.CompletedProcess:
    """envs/models.post-deploy.sh as Snakemake runs it: bash, in the environment (its bin/ first on PATH), from the
    working directory, with Snakemake's environment variables (here only `variables`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCSYNTH_") and k != "PYTHONPATH"}
    env.update(variables, PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(["bash", str(REPO / "envs" / "models.post-deploy.sh")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def _run_outside(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _direct_url(python: Path, cwd: Path) -> dict:
    """PEP 610 record of how the venv's scsynth was installed (dir_info.editable is true for an editable one)."""
    code = "import importlib.metadata as m; print(m.distribution('scsynth').read_text('direct_url.json'))"
    return json.loads(_run_outside(cwd, str(python), "-c", code))


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    """The conda environments' post-deploy step, run as `snakemake --sdm conda` runs it for a project that uses
    this workflow as a module: from that project's folder, told where the workflow is by SCSYNTH_WORKFLOW_DIR
    (rules/common.smk sets it). It builds a wheel of the workflow's own source from a temporary copy (the workflow's
    folder gets no build/ or egg-info: it may be read-only) and installs it, not editable, into a fresh venv (no
    dependencies: those of this environment are on the path); `scsynth` then runs from outside the checkout."""
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    caller = tmp_path / "caller"  # another project's folder: no scsynth sources here
    caller.mkdir()
    build_outputs = [REPO / "build", REPO / "scsynth.egg-info"]  # what an in-place setuptools build writes
    before = [p.exists() and p.stat().st_mtime_ns for p in build_outputs]
    proc = _post_deploy(venv, caller, SCSYNTH_WORKFLOW_DIR=str(REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.exists() and p.stat().st_mtime_ns for p in build_outputs] == before

    record = _direct_url(python, caller)
    assert record["dir_info"].get("editable", False) is False, record
    assert record["url"] != REPO.as_uri(), record  # built from the temporary copy
    where = Path(_run_outside(caller, str(python), "-c", "import scsynth_core; print(scsynth_core.__file__)").strip())
    assert where.is_relative_to(venv), where
    wheel_info = (where.parents[1] / f"scsynth-{scsynth_core.__version__}.dist-info" / "WHEEL").read_text()
    assert "Tag: py3-none-any" in wheel_info and "Root-Is-Purelib: true" in wheel_info, wheel_info

    def modules(package: Path) -> set[str]:
        return {str(p.relative_to(package)) for p in package.rglob("*.py")}

    assert modules(where.parent) == modules(REPO / "scsynth_core")  # every subpackage, not just the top

    scsynth = str(venv / "bin" / "scsynth")
    assert _run_outside(caller, scsynth, "--version").strip() == f"scsynth {scsynth_core.__version__}"
    listed = {line.split("\t")[0] for line in _run_outside(caller, scsynth, "models").splitlines()}
    assert {"upsample", "noise", "scgan", "scvi_posterior"} <= listed, listed


def _tiny_wheel(folder: Path, version: str) -> Path:
    """A wheel of an `scsynth` distribution with only metadata (pip installs it without building anything)."""
    wheel = folder / f"scsynth-{version}-py3-none-any.whl"
    info = f"scsynth-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: scsynth\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"]))
    return wheel


def test_post_deploy_installs_the_given_package_and_checks_its_version(tmp_path):
    """SCSYNTH_PACKAGE (a wheel here) wins over the workflow's source; an install whose version is not the
    workflow's (the script's `version=`) stops the environment's creation."""
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    wheel = _tiny_wheel(tmp_path, "9.9.9")
    proc = _post_deploy(venv, tmp_path, SCSYNTH_PACKAGE=str(wheel), SCSYNTH_WORKFLOW_DIR=str(REPO))
    assert proc.returncode != 0
    assert f"installed scsynth 9.9.9, but this workflow is scsynth {scsynth_core.__version__}" in proc.stderr
    assert _direct_url(python, tmp_path)["url"] == wheel.as_uri()  # the wheel, not a build of REPO


def test_post_deploy_without_a_source_says_what_to_set(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()  # never used: the script stops before pip
    proc = _post_deploy(venv, tmp_path)
    assert proc.returncode == 1
    assert "no scsynth source in ''" in proc.stderr and "SCSYNTH_PACKAGE" in proc.stderr, proc.stderr
    # SCSYNTH_ROOT wins over the workflow's folder, even when it holds no sources
    proc = _post_deploy(venv, tmp_path, SCSYNTH_ROOT=str(tmp_path / "nowhere"), SCSYNTH_WORKFLOW_DIR=str(REPO))
    assert proc.returncode == 1
    assert f"no scsynth source in '{tmp_path / 'nowhere'}'" in proc.stderr, proc.stderr
