"""The container recipe (containers/Dockerfile) agrees with the project: the same pinned versions as
pyproject.toml, every file the workflow reads copied to the image, the image the Snakefile's `containerized:`
names and the docs document, a smoke command that exists.

These tests read the recipe; they build nothing. Building and running the image (minutes) is opt-in:
SCSYNTH_CONTAINER_BUILD=1 runs containers/build-local.sh (buildah; see docs/containers.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import scsynth_core
from workflow_utils import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

DOCKERFILE = REPO / "containers" / "Dockerfile"
CONSTRAINTS = REPO / "containers" / "constraints.txt"
WORKFLOW_ROOT = "/opt/scsynth"  # where the image keeps the workflow
VERSION = scsynth_core.__version__


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return out


def _stages() -> list[list[tuple[str, str]]]:
    """Instructions per build stage (the first list: those before the first FROM)."""
    stages: list[list[tuple[str, str]]] = [[]]
    for instr in _instructions(DOCKERFILE.read_text()):
        if instr[0] == "FROM":
            stages.append([])
        stages[-1].append(instr)
    return stages


def _args() -> dict[str, str]:
    """Default values of every ARG that has one."""
    return {
        name: value
        for keyword, args in _instructions(DOCKERFILE.read_text())
        if keyword == "ARG" and "=" in args
        for name, _, value in [args.partition("=")]
    }


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _constraints() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{CONSTRAINTS}: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = version
    return pins


def test_recipe_installs_the_versions_pyproject_pins():
    project = _pyproject()["project"]
    required = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["kubernetes"]]
    pins = _constraints()
    (torch,) = [r for r in required if r.name == "torch"]
    assert str(torch.specifier) == f"=={_args()['TORCH_VERSION']}" == f"=={pins['torch']}"
    for req in required:
        name = canonicalize_name(req.name)
        assert name in pins, f"{CONSTRAINTS}: no pin for {req.name} (pyproject.toml requires {req})"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{CONSTRAINTS}: {name}=={pins[name]} is outside pyproject.toml's {req}"
        )
    # The recipe installs torch (from its index) and then the wheel with its extra, both under these pins.
    runs = " ".join(args for keyword, args in _stages()[1] if keyword == "RUN")
    assert '-c constraints.txt "torch==${TORCH_VERSION}"' in runs
    assert '-c constraints.txt "$(ls /dist/scsynth-*.whl)[kubernetes]"' in runs
    assert "python -m build --wheel" in runs


def _workflow_files() -> set[str]:
    """Repository-relative paths of every file the Snakefile includes or its rules name (scripts, conda envs,
    report captions, config), found in the sources so that a new rule file or script is covered without
    changing this test."""
    pattern = re.compile(
        r"""(?:^(?:include|configfile|report):\s*|^\s+(?:script|conda):\s*\n\s*|caption=)"([^"{}]+)\"""",
        re.MULTILINE,
    )
    found = {"Snakefile"}
    queue = [REPO / "Snakefile"]
    while queue:
        source = queue.pop()
        for ref in pattern.findall(source.read_text()):
            path = (source.parent / ref).resolve().relative_to(REPO)
            if str(path) not in found:
                found.add(str(path))
                if path.suffix == ".smk":
                    queue.append(REPO / path)
    # Read by rules/common.smk through os.path.join, not as a directive.
    found |= {
        "config/schema.yaml",
        "config/datasets.yaml",
        "config/datasets.schema.yaml",
    }
    return found


def test_image_copies_every_file_the_workflow_needs():
    needed = _workflow_files()
    assert {
        "rules/common.smk",
        "rules/train.smk",
        "workflow_scripts/run_step.py",
        "envs/models.yaml",
    } <= needed
    assert any(p.startswith("report/") and p != "report/workflow.rst" for p in needed)  # captions were found
    copies = {}
    for keyword, args in _stages()[-1]:
        if keyword == "COPY" and not args.startswith("--from"):
            src, dest = args.split()
            assert dest == f"{WORKFLOW_ROOT}/{src}", f"{DOCKERFILE}: COPY {args}: not kept at its relative path"
            copies[src.rstrip("/")] = src.endswith("/")
    ignore = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert ignore[0] == "*"  # an allow list: nothing reaches the build context unless listed
    for path in sorted(needed):
        assert (REPO / path).is_file(), f"the workflow refers to {path}, which does not exist"
        covering = [src for src, is_dir in copies.items() if path == src or (is_dir and path.startswith(src + "/"))]
        assert covering, f"{DOCKERFILE}: no COPY brings {path} into {WORKFLOW_ROOT}"
        entry = covering[0] + ("/" if copies[covering[0]] else "")
        assert f"!{entry}" in ignore, f".dockerignore keeps {entry} out of the build context"
    # Everything the builder stage copies is in the context as well.
    for keyword, args in _stages()[1]:
        if keyword == "COPY":
            assert f"!{args.split()[0]}" in ignore, f".dockerignore keeps {args.split()[0]} out of the build context"


def _containerized() -> tuple[str, str]:
    """The Snakefile's `containerized:` directive: (environment variable, default image)."""
    match = re.search(
        r'^containerized:\s*os\.environ\.get\("(\w+)",\s*"([^"]+)"\)\s*$',
        (REPO / "Snakefile").read_text(),
        re.MULTILINE,
    )
    assert match, "Snakefile: no `containerized: os.environ.get(VARIABLE, DEFAULT)` line"
    return match.group(1), match.group(2)


def test_containerized_names_the_documented_image():
    variable, default = _containerized()
    assert default == f"resources/scsynth-{VERSION}.sif"
    docs = (REPO / "docs" / "containers.md").read_text()
    header = DOCKERFILE.read_text()
    tag = f"scsynth:{VERSION}"
    assert f"-t {tag} ." in header and f"{tag}-cuda" in header
    assert f"-t {tag} ." in docs, "docs/containers.md: no build command with the tag"
    assert f"apptainer build {default} docker-daemon://{tag}" in docs, "docs/containers.md: no .sif build"
    assert f"{variable}=docker://" in docs and "--sdm apptainer" in docs
    profile = yaml.safe_load((REPO / "profiles" / "kubernetes" / "config.yaml").read_text())
    assert profile["container-image"].endswith(f"/scsynth:{VERSION}"), profile["container-image"]


def test_runtime_stage_is_pinned_non_root_and_runs_the_smoke_command():
    base = _args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-\w+", base), base  # a patch release, not 3.11
    assert [args for keyword, args in _stages()[1] if keyword == "FROM"] == ["${PYTHON_IMAGE} AS builder"]
    final = dict(_stages()[-1])
    assert final["FROM"] == "${PYTHON_IMAGE}"
    assert final["USER"].split(":")[0] not in {"0", "root"}
    assert "/opt/venv/bin" in final["ENV"]  # scsynth and snakemake on PATH without activation
    cmd = json.loads(final["CMD"])
    assert cmd == ["scsynth", "models"] and "scsynth" in _pyproject()["project"]["scripts"]


@pytest.mark.skipif(
    os.environ.get("SCSYNTH_CONTAINER_BUILD") != "1",
    reason="opt-in: SCSYNTH_CONTAINER_BUILD=1",
)
@pytest.mark.timeout(1800)
@pytest.mark.system
def test_image_builds_and_runs_the_workflow():
    """Builds the image with buildah and runs the smoke command and a dry run of the workflow inside it."""
    proc = subprocess.run(
        ["bash", str(REPO / "containers" / "build-local.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert f"scsynth {VERSION}" in out and "scvi_posterior" in out, out[-4000:]
    assert "This was a dry-run" in out, out[-4000:]
