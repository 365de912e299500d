"""Helpers to run the Snakemake workflow on a private copy of the repository's workflow files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ["Snakefile", "rules", "config", "workflow_scripts", "report", "profiles", "envs"]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
#: Cores a test's Snakemake run may use: under pytest-xdist (``make test``), this worker's share of the machine.
WORKER_CORES = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) into ``dest`` so tests never touch the checkout's results/."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        else:
            shutil.copy2(src, dest / part)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900, check: bool = False) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir``; stdout and stderr are merged into ``.stdout``. ``--cores`` is capped at
    the worker's share of the machine."""
    args = list(args)
    if "--cores" in args:
        at = args.index("--cores") + 1
        args[at] = str(min(int(args[at]), WORKER_CORES))
    proc = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,  # the failure below carries snakemake's output
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


def configfile_args(workdir: Path, text: str) -> list[str]:
    """Write an extra config file (merged over config/config.yaml) and return the CLI arguments for it."""
    path = workdir / "extra_config.yaml"
    path.write_text(text)
    return ["--configfile", "config/config.yaml", str(path)]


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count} (``total`` and ``all`` rows included)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    stats = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        stats[parts[0]] = int(parts[1])
    return stats


def job_resources(output: str) -> list[tuple[str, dict[str, int | str]]]:
    """``(rule, resources)`` of every job block of a dry run, in order; whole-number values as int."""
    jobs = []
    for block in output.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0]
        match = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE)
        items = (item.split("=", 1) for item in match.group(1).split(", ")) if match else ()
        jobs.append((rule, {key: int(value) if value.isdigit() else value for key, value in items}))
    return jobs
