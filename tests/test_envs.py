"""Conda environments (envs/*.yaml) against pyproject.toml, every rule's conda: directive, and snakemake --lint.

The environments are only used with `snakemake --sdm conda`, which cannot run here (no conda, channels
unreachable), so their content is checked statically: each package and its version bounds must be exactly
what pyproject.toml declares, so that `make install` (pip) and `--sdm conda` install the same stack.

conda-forge names that differ from the PyPI names are mapped in CONDA_TO_PYPI (pytorch = torch, python-igraph =
igraph, matplotlib-base = matplotlib without the Qt backend).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import scsynth_core
from workflow_utils import REPO, SNAKEMAKE, copy_workflow, snakemake

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ENVS = REPO / "envs"
CHANNELS = ["conda-forge", "bioconda", "nodefaults"]
CONDA_TO_PYPI = {"pytorch": "torch", "python-igraph": "igraph", "matplotlib-base": "matplotlib"}
# Needed by the Snakemake process only (workflow, report, executor plugins), never by a rule's script.
DRIVER_ONLY = {"snakemake", "pygments"} | {"snakemake-executor-plugin-slurm"}
# Needed only where models train and sample (envs/models.yaml), not by the data/evaluation/figure rules.
MODEL_ONLY = {"torch", "scvi-tools", "lightning", "pyro-ppl", "torchmetrics"}
# The install of scsynth itself (post-deploy script): pip, and the build backend of pyproject.toml.
INSTALL_TOOLS = {"pip"}
BUILD_TOOLS = {"setuptools", "wheel"}
# Which environment each rule uses.
RULE_ENVS = {
    "download_dataset": "download",
    "train_model": "models",
    "generate_cells": "models",
    "pilot_replicates": "models",
    "pilot_zero_inflation": "models",
    "disentanglement_run": "models",
    "disentanglement_code_data": "models",
    "perturbation_run": "models",
    "actinn_classification": "models",  # trains ACTINN (torch)
}
DEFAULT_ENV = "analysis"


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _pypi_requirements(specs: list[str]) -> dict[str, SpecifierSet]:
    out = {}
    for spec in specs:
        req = Requirement(spec)
        out[req.name.lower()] = req.specifier
    return out


def _conda_spec(entry: str) -> tuple[str, str]:
    """'scanpy>=1.11,<1.12' -> ('scanpy', '>=1.11,<1.12'); 'python=3.11' -> ('python', '=3.11')."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry.strip())
    assert match, entry
    return match.group(1).lower(), match.group(2).replace(" ", "")


def _env(name: str) -> dict:
    return yaml.safe_load((ENVS / f"{name}.yaml").read_text())


def _env_packages(name: str) -> dict[str, str]:
    deps = _env(name)["dependencies"]
    assert all(isinstance(d, str) for d in deps), f"{name}.yaml: no pip section (scsynth comes from post-deploy)"
    return dict(_conda_spec(d) for d in deps)


def _runtime() -> dict[str, SpecifierSet]:
    requirements = _pypi_requirements(_pyproject()["project"]["dependencies"])
    return {name: spec for name, spec in requirements.items() if name not in DRIVER_ONLY}


def _env_names() -> list[str]:
    return sorted(p.stem for p in ENVS.glob("*.yaml"))


def test_every_environment_is_declared_and_pinned_like_pyproject():
    assert _env_names() == ["analysis", "download", "models"]
    project = _pyproject()
    runtime = _runtime()
    build = _pypi_requirements(project["build-system"]["requires"])
    python_range = SpecifierSet(project["project"]["requires-python"])
    for name in _env_names():
        env = _env(name)
        assert env["channels"] == CHANNELS, name
        packages = _env_packages(name)
        assert "python" in packages and "pip" in packages, name
        python = packages.pop("python")
        assert python.startswith("=") and python_range.contains(python.lstrip("=")), (name, python)
        for conda_name, spec in packages.items():
            pypi = CONDA_TO_PYPI.get(conda_name, conda_name)
            if pypi in INSTALL_TOOLS:
                continue
            if pypi in BUILD_TOOLS:
                assert SpecifierSet(spec) == build[pypi], (name, conda_name, spec, build[pypi])
                continue
            assert pypi in runtime, f"{name}.yaml: {conda_name} is not a dependency in pyproject.toml"
            assert SpecifierSet(spec) == runtime[pypi], (name, conda_name, spec, str(runtime[pypi]))
        # A post-deploy script installs scsynth itself (tests/test_module_use.py runs it).
        assert os.access(ENVS / f"{name}.post-deploy.sh", os.X_OK), name


def test_post_deploy_scripts_install_this_version_from_the_workflows_folder():
    """The three scripts are one text (one install procedure); its `version=` is the package's, so a new version
    changes the environments' hashes (Snakemake hashes the script with the YAML) and recreates them; the variable
    that tells the scripts where the workflow is, is the one rules/common.smk sets."""
    texts = {(ENVS / f"{name}.post-deploy.sh").read_text() for name in _env_names()}
    assert len(texts) == 1
    (text,) = texts
    assert re.findall(r"^version=(\S+)$", text, re.MULTILINE) == [scsynth_core.__version__]
    assert "${SCSYNTH_WORKFLOW_DIR:-}" in text
    common = (REPO / "rules" / "common.smk").read_text()
    assert "os.environ.update(SCSYNTH_WORKFLOW_DIR=WORKFLOW_DIR)" in common


def _pypi_names(name: str) -> set[str]:
    return {CONDA_TO_PYPI.get(p, p) for p in _env_packages(name)} - {"python"} - INSTALL_TOOLS - BUILD_TOOLS


def test_environments_cover_pyproject():
    """models = every runtime dependency; analysis = the same without torch & co; download is a subset."""
    runtime = set(_runtime())
    assert _pypi_names("models") == runtime
    assert _pypi_names("analysis") == runtime - MODEL_ONLY
    assert _pypi_names("download") <= _pypi_names("analysis")


def _rule_conda() -> dict[str, str | None]:
    """{rule: env file named by its conda: directive} from the rules' source."""
    out = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        blocks = re.split(r"^rule (\w+):\n", smk.read_text(), flags=re.MULTILINE)
        for rule, body in zip(blocks[1::2], blocks[2::2]):
            match = re.search(r'^    conda:\n\s+"([^"]+)"', body, re.MULTILINE)
            out[rule] = match.group(1) if match else None
    return out


def test_every_rule_names_its_environment():
    rules = _rule_conda()
    assert len(rules) >= 19
    for rule, path in rules.items():
        expected = RULE_ENVS.get(rule, DEFAULT_ENV)
        assert path == f"../envs/{expected}.yaml", (rule, path)
        assert (REPO / "rules" / path).resolve().is_file()


def _lints(output: str) -> dict[str, list[str]]:
    """Text of `snakemake --lint` as {"rule X" or "snakefile F": [lint titles]}."""
    lints, current = {}, None
    for line in output.splitlines():
        match = re.match(r"^Lints for (rule \w+|snakefile \S+?)[ :]", line)
        if match:
            current = match.group(1)
            lints[current] = []
        elif current and line.startswith("    * "):
            lints[current].append(line[6:].rstrip(":"))
    return lints


def test_lint_finds_nothing_about_rules(tmp_path):
    """No rule-level lint: every rule has a log: and a conda: directive, no hard-coded params, ..."""
    wf = copy_workflow(tmp_path / "wf")
    proc = snakemake(wf, "--lint")
    lints = _lints(proc.stdout)
    rule_lints = {k: v for k, v in lints.items() if k.startswith("rule ")}
    assert not rule_lints, rule_lints
    assert proc.returncode == 0 or lints, proc.stdout[-3000:]  # exit 1 always comes with a listed lint


def test_lint_is_clean(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    proc = snakemake(wf, "--lint")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout


@pytest.mark.slow
def test_analysis_rules_run_without_torch(tmp_path):
    """The data and evaluation rules (envs/analysis.yaml, no torch) really do not import torch.

    A stub package that refuses to import shadows torch; import, preparation, splits, the downsampling, the
    realism reference, the real-vs-real evaluation and the pilot reference then run as usual.
    """
    blocker = tmp_path / "no_torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked: this rule must not need it')\n")
    wf = copy_workflow(tmp_path / "wf")
    env = dict(os.environ, PYTHONPATH=str(blocker.parent))
    (wf / "small_forest.yaml").write_text("realism: {rf_trees: 50}\n")
    targets = [
        "results/data/pbmc68k_demo/splits/test0.3_seed0.tsv",
        "results/augmentation/pbmc68k_demo/splits/frac0.5_seed0.tsv",
        "results/realism/pbmc68k_demo/real_control/seed0/metrics.json",
        "results/pilot/pbmc68k_demo/reference.h5ad",
    ]
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *targets, "--configfile", "config/config.yaml", "small_forest.yaml"],
        cwd=wf, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:]
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True, check=False)
    assert "torch is blocked" in check.stderr  # the stub was in effect
