"""The workflow on a real (single-node) SLURM cluster through profiles/slurm + profiles/slurm-local.

tests/slurm_cluster.py starts munged, slurmctld and slurmd (Debian packages) in a private directory, with one
fake GPU; the tests submit the demo workflow with the SLURM executor plugin and check, from SLURM's own records
(squeue keeps ended jobs for MinJobAge, one hour on the test cluster), that every job went through sbatch
except the Snakefile's light `localrules` (which run once each in the Snakemake process),
that a job killed with scancel while running is resubmitted, that results equal a local run, and that exactly
the training and generation jobs of a `device: cuda` config request a GPU.

Skipped only when slurmctld is not installed (`apt-get install slurmctld slurmd slurm-client munge`; .ci/run
does it); the daemons run as root, so a non-root run is skipped too.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import time

import anndata as ad
import numpy as np
import pytest

from slurm_cluster import SlurmCluster, missing_binaries
from workflow_utils import REPO, SNAKEMAKE, configfile_args, copy_workflow, job_stats, snakemake

SLURM_PROFILE = ["--profile", "profiles/slurm", "--workflow-profile", "profiles/slurm-local"]
# The realism experiment with one baseline, a small forest and no embeddings: every stage of the workflow
# (import -> prepare -> split -> train -> generate -> evaluate -> figures -> leaderboard, training times) in 16
# jobs, 9 of them through sbatch (the summaries, the leaderboard and the plots of small tables are localrules).
# One model: a second one only repeats train/generate/evaluate (3 more sbatch jobs, about a minute in the suite).
FAST_REALISM = (
    "experiments: [realism]\nrealism: {models: [upsample], rf_trees: 50, embeddings: [], per_cluster: false}\n"
)
UNFINISHED = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}
# The jobs that train or generate: they ask for a GPU when the config says device: cuda.
GPU_RULES = {"train_model", "generate_cells", "pilot_replicates", "pilot_zero_inflation"}


@pytest.fixture(scope="module")
def cluster():
    missing = missing_binaries()
    if "slurmctld" in missing:
        pytest.skip("slurmctld is not installed (Debian: apt-get install slurmctld slurmd slurm-client munge)")
    assert not missing, f"slurmctld is installed but not {', '.join(missing)}"
    if os.geteuid() != 0:
        pytest.skip("the test cluster runs slurmctld/slurmd as root (SlurmUser=root): run the tests as root")
    with SlurmCluster() as c:
        yield c


def _rule_of(job: dict[str, str]) -> str:
    """Snakemake submits with --comment rule_<rule>[_wildcards_<...>]."""
    return re.sub(r"^rule_", "", job["comment"]).split("_wildcards_")[0]


def _start(cluster, wf, *args) -> subprocess.Popen:
    with open(wf / "snakemake.out", "w") as out:  # snakemake keeps its own copy of the fd
        return subprocess.Popen(
            [*SNAKEMAKE, *SLURM_PROFILE, *args], cwd=wf, env=cluster.env(), stdout=out, stderr=subprocess.STDOUT
        )


def _finish(proc, wf, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: Snakemake waits for running jobs; the cluster fixture cancels the rest
        proc.wait(timeout=60)
    text = (wf / "snakemake.out").read_text(errors="replace")
    assert proc.returncode == 0, f"snakemake through SLURM failed ({proc.returncode}):\n{text[-8000:]}"
    return text


def _final_state(cluster, job_id: str, timeout: float = 30) -> str:
    """Wait until a job has ended (a cancelled running job passes through COMPLETING) and return its state."""
    deadline = time.monotonic() + timeout
    while True:
        state = cluster.run("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T").stdout.strip()
        if state not in UNFINISHED or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def _local_rules() -> set[str]:
    """The rules of the Snakefile's ``localrules:`` list."""
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (REPO / "Snakefile").read_text(), re.MULTILINE)
    assert block, "the Snakefile has no localrules: list"
    return set(re.findall(r"\w+", block.group(1)))


def _run_jobs(cluster, output: str) -> list[dict[str, str]]:
    """SLURM's record of every job this Snakemake run submitted (job name = the run ID it logs)."""
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    return [job for job in cluster.jobs() if job["name"] == run_id]


def _outputs(workdir):
    """Split files (bytes) and generated matrices of a realism run."""
    splits = {p.name: p.read_bytes() for p in sorted((workdir / "results/data/pbmc68k_demo/splits").glob("*.tsv"))}
    generated = {
        p.parent.parent.name: ad.read_h5ad(p).X.toarray()
        for p in sorted((workdir / "results/realism/pbmc68k_demo").glob("*/seed0/generated.h5ad"))
    }
    return splits, generated


@pytest.mark.slow
@pytest.mark.slurm
def test_demo_through_slurm_equals_local_run_and_survives_scancel(cluster, default_run, tmp_path):
    """The demo (realism part) through SLURM with device: cuda, against the session's local CPU default run (the
    same split and upsampling baseline: its generated cells depend on the seed only).

    The baseline ignores the device, so the GPU jobs also run on this CPU-only machine: the run exercises the
    GPU path (train_model and generate_cells ask SLURM for a GPU, the node's fake GPU lets them start, every
    other job asks for none) and still must reproduce the local results exactly.
    """
    wf = copy_workflow(tmp_path / "slurm")
    extra = configfile_args(wf, "device: cuda\n" + FAST_REALISM)
    expected = job_stats(snakemake(wf, "-n", *SLURM_PROFILE, *extra, check=True).stdout)
    for row in ("total", "all"):  # not jobs
        expected.pop(row, None)
    assert sum(expected.values()) == 16 and expected["train_model"] == 1, expected
    local = _local_rules()
    submitted = {rule: n for rule, n in expected.items() if rule not in local}
    assert sum(submitted.values()) == 9 and not GPU_RULES & local, submitted

    t0 = time.monotonic()
    proc = _start(cluster, wf, *extra)
    # Kill a running training (or generation) job with scancel, as an admin or a preemption would: it must be
    # resubmitted. A job that ends between squeue and scancel stays COMPLETED: then the next one is tried.
    cancelled, tried = None, set()
    deadline = time.monotonic() + 240
    while cancelled is None and proc.poll() is None and time.monotonic() < deadline:
        for job in cluster.jobs():
            if _rule_of(job) in GPU_RULES and job["state"] == "RUNNING" and job["id"] not in tried:
                tried.add(job["id"])
                cluster.run("scancel", job["id"], check=False)
                if _final_state(cluster, job["id"]) == "CANCELLED":
                    cancelled = job
                break
        time.sleep(0.1)
    output = _finish(proc, wf, timeout=600)  # 125 s alone on the idle 2-core VM; twice that beside a busy worker
    wall = time.monotonic() - t0
    assert cancelled is not None, f"no training or generation job could be cancelled while running (tried {tried})"

    jobs = _run_jobs(cluster, output)
    by_id = {job["id"]: job for job in jobs}
    assert by_id[cancelled["id"]]["state"] == "CANCELLED", by_id[cancelled["id"]]
    # Every job of the dry run but the local rules' went through sbatch and completed; the cancelled one ran
    # again. The local rules' jobs ran once each in the Snakemake process.
    completed = collections.Counter(_rule_of(job) for job in jobs if job["state"] == "COMPLETED")
    assert dict(completed) == submitted, (dict(completed), submitted)
    assert len(jobs) == sum(submitted.values()) + 1, jobs
    ran_locally = collections.Counter(re.findall(r"^localrule (\w+):", output, re.MULTILINE))
    ran_locally.pop("all", None)
    assert dict(ran_locally) == {rule: n for rule, n in expected.items() if rule in local}, dict(ran_locally)
    resubmitted = [job for job in jobs if job["comment"] == cancelled["comment"]]
    assert [job["state"] for job in resubmitted] == ["CANCELLED", "COMPLETED"], resubmitted
    # One SLURM log per job: logs/slurm/rule_<rule>/<wildcards>/<job id>.log (the cancelled one had started).
    logs = {path.stem: path for path in (wf / "logs/slurm").rglob("*.log")}
    assert set(logs) <= set(by_id), (sorted(logs), sorted(by_id))
    assert {job["id"] for job in jobs if job["state"] == "COMPLETED"} | {cancelled["id"]} <= set(logs)
    assert len(logs) == len(jobs)
    for job_id, path in logs.items():
        assert path.relative_to(wf / "logs/slurm").parts[0] == f"rule_{_rule_of(by_id[job_id])}"
    # device: cuda -> exactly training and generation asked SLURM for a GPU (sbatch --gpus=1).
    for job in jobs:
        gpu_rule = _rule_of(job) in GPU_RULES
        assert job["tres"] == ("gres:gpu:1" if gpu_rule else "N/A"), job
    # Same results as the local CPU run: split files byte for byte, generated matrices exactly.
    splits_local, gen_local = _outputs(default_run)
    splits_slurm, gen_slurm = _outputs(wf)
    assert len(splits_slurm) == 1 and splits_slurm.items() <= splits_local.items()
    assert gen_local.keys() == {"noise", "upsample"} and gen_slurm.keys() == {"upsample"}
    for name in gen_slurm:
        np.testing.assert_array_equal(gen_local[name], gen_slurm[name])
    assert (wf / "results/realism/leaderboard.tsv").exists()
    print(
        f"SLURM run: {len(jobs)} sbatch jobs ({sum(submitted.values())} + 1 resubmitted after scancel of a "
        f"running {_rule_of(cancelled)} job) and {sum(ran_locally.values())} local jobs in {wall:.0f} s"
    )


@pytest.mark.slow
@pytest.mark.slurm
def test_gpu_rule_gets_the_gpu_through_the_profile(cluster, tmp_path):
    """The profile's GPU mapping end to end: gpu=1 -> sbatch --gpus=1 -> CUDA_VISIBLE_DEVICES in the job;
    gpu=0 (what training asks for with device: cpu/auto) -> no GPU, and --cpus-per-task = threads."""
    wf = tmp_path / "gpu"
    shutil.copytree(REPO / "profiles", wf / "profiles")
    (wf / "Snakefile").write_text(
        "rule all:\n    input: 'gpu.txt', 'cpu.txt'\n\n"
        "rule train_model:\n    output: 'gpu.txt'\n    resources: gpu=1\n"
        "    shell: 'echo ${{CUDA_VISIBLE_DEVICES:-none}} ${{SLURM_GPUS_ON_NODE:-none}} > {output}'\n\n"
        "rule cpu_rule:\n    output: 'cpu.txt'\n    threads: 2\n    resources: gpu=0\n"
        "    shell: 'echo ${{CUDA_VISIBLE_DEVICES:-none}} $SLURM_CPUS_PER_TASK > {output}'\n"
    )
    proc = _start(cluster, wf)
    output = _finish(proc, wf, timeout=120)
    tres = {_rule_of(job): job["tres"] for job in _run_jobs(cluster, output)}
    assert tres == {"train_model": "gres:gpu:1", "cpu_rule": "N/A"}, tres
    assert (wf / "gpu.txt").read_text().split() == ["0", "1"]
    assert (wf / "cpu.txt").read_text().split() == ["none", "2"]
