"""Pilot replicates through SLURM: in-job batching (``pilot.replicates_per_job``) vs Snakemake group jobs.

Not a test; docs/scale.md ("Job grouping") has the results. Starts the private single-node SLURM cluster of
tests/slurm_cluster.py (needs root and the Debian slurm packages), copies the workflow three times and, in
each copy, builds only the demo pilot study's ``pilot_replicates`` jobs (noise model, pbmc68k_demo, 3 sizes x 3
seeds) from the checkout's ``results/data/pbmc68k_demo/prepared.h5ad`` and ``results/pilot/pbmc68k_demo/
reference.h5ad`` (run the default workflow first): 9 replicates in one job, 9 jobs, and 9 jobs in one group.
Prints and writes (``--results``) each run's wall time, SLURM submissions and replicate rows.
Usage: ``nice -n 19 python benchmarks/bench_pilot_grouping.py [--work-dir /tmp/grp]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
PROFILE = ["--profile", "profiles/slurm", "--workflow-profile", "profiles/slurm-local"]
INPUTS = ("results/data/pbmc68k_demo/prepared.h5ad", "results/pilot/pbmc68k_demo/reference.h5ad")
# name: (replicates_per_job, batches, extra arguments). A group without --cores/--resources asks SLURM for the
# sum of its parallel jobs' resources (9 x 2 CPUs, 9 x 8 GB), which a 2-core node never grants.
RUNS = {
    "batched": (9, 1, []),
    "ungrouped": (1, 9, []),
    "grouped": (
        1,
        9,
        ["--groups", "pilot_replicates=g", "--group-components", "g=9", "--cores", "2", "--resources", "mem_mb=16000"],
    ),
}


def main() -> None:
    from slurm_cluster import SlurmCluster
    from workflow_utils import SNAKEMAKE, copy_workflow

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default="/tmp/scsynth_grouping")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "pilot_grouping.json"))
    args = parser.parse_args()
    out = {}
    with SlurmCluster() as cluster:
        for name, (per_job, n_batches, extra) in RUNS.items():
            wf = copy_workflow(Path(args.work_dir) / name)
            for rel in INPUTS:
                (wf / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / rel, wf / rel)
            (wf / "extra.yaml").write_text(f"experiments: [pilot]\npilot: {{replicates_per_job: {per_job}}}\n")
            targets = [f"results/pilot/pbmc68k_demo/noise/batch{b}.tsv" for b in range(n_batches)]
            cmd = [
                *SNAKEMAKE,
                *targets,
                *PROFILE,
                "--configfile",
                "config/config.yaml",
                "extra.yaml",
                "--allowed-rules",
                "pilot_replicates",
                "--rerun-triggers",
                "mtime",
                *extra,
            ]
            t0 = time.monotonic()
            proc = subprocess.run(
                cmd,
                cwd=wf,
                env=cluster.env() | {"OMP_NUM_THREADS": "1"},
                capture_output=True,
                check=False,
                text=True,
                timeout=1800,
            )
            wall = time.monotonic() - t0
            text = proc.stdout + proc.stderr
            (wf / "snakemake.out").write_text(text)
            run_id = re.search(r"SLURM run ID: (\S+)", text)
            jobs = [j for j in cluster.jobs() if run_id and j["name"] == run_id.group(1)]
            rows = sum(len((wf / t).read_text().splitlines()) - 1 for t in targets if (wf / t).exists())
            out[name] = {
                "rc": proc.returncode,
                "wall_s": round(wall, 1),
                "sbatch_jobs": len(jobs),
                "replicate_rows": rows,
                "load_average_1min": round(os.getloadavg()[0], 1),
            }
            print(name, json.dumps(out[name]), flush=True)
    Path(args.results).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
