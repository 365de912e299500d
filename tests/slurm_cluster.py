"""A throw-away single-node SLURM cluster for tests (Debian packages slurmctld, slurmd, slurm-client, munge).

Everything lives in one private temporary directory: its own munge key and socket, slurm.conf and gres.conf,
state, spool, pid and log files, and free TCP ports on 127.0.0.1. Nothing is written to /etc, no system
service is touched, and a cluster another test (or engineer) runs on the same machine does not interfere:
SLURM clients find this cluster through the ``SLURM_CONF`` variable of :meth:`SlurmCluster.env`.

The recipe is the one measured in ``../shared/reference/SNAKEMAKE.md`` section B:

- ``select/cons_tres`` with ``CR_Core_Memory``, ``proctrack/linuxproc`` and ``task/none`` (no cgroups, no systemd);
- accounting off (``accounting_storage/none``): ``sacct`` cannot answer, so Snakemake must query ``squeue``,
  which it only trusts while ``MinJobAge >= 3 x`` its initial status interval (3600 s here);
- one fake GPU, ``Gres=gpu:1`` backed by ``File=/dev/null`` with ``AutoDetect=off``: SLURM schedules
  ``--gpus=1`` jobs and sets ``CUDA_VISIBLE_DEVICES=0`` in them, but there is no device behind it.

One shim: Snakemake's slurm-jobstep plugin runs each job through a nested ``srun`` and removes every
``SLURM_*`` variable but the job's identity from that srun's environment, ``SLURM_CONF`` included. A real
cluster does not notice (its nodes read /etc/slurm/slurm.conf or fetch the configuration from slurmctld via a
DNS SRV record); this private cluster has neither, so :meth:`SlurmCluster.env` puts a ``bin/srun`` first on
``PATH`` that sets ``SLURM_CONF`` again and execs the real ``/usr/bin/srun``.

The daemons (munged, slurmctld, slurmd) run as root in the foreground as child processes of the test and are
stopped by their PIDs (SIGTERM, then SIGKILL); jobs still queued or running are cancelled first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "debug"
NODE = "localhost"


def missing_binaries() -> list[str]:
    """The programs a cluster needs that are not installed (empty when it can start)."""
    needed = {
        "munged": "/usr/sbin/munged",
        "mungekey": shutil.which("mungekey") or "/usr/sbin/mungekey",
        "slurmctld": "/usr/sbin/slurmctld",
        "slurmd": "/usr/sbin/slurmd",
        "sbatch": shutil.which("sbatch") or "/usr/bin/sbatch",
        "squeue": shutil.which("squeue") or "/usr/bin/squeue",
        "scancel": shutil.which("scancel") or "/usr/bin/scancel",
        "sinfo": shutil.which("sinfo") or "/usr/bin/sinfo",
    }
    return [name for name, path in needed.items() if not os.access(path, os.X_OK)]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _memory_mb() -> int:
    """Schedulable memory: 80 % of MemTotal (the node must not claim more than it has)."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(int(line.split()[1]) / 1024 * 0.8)
    return 4000


class SlurmCluster:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, cpus: int | None = None, memory_mb: int | None = None, gpus: int = 1):
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb or _memory_mb()
        self.gpus = gpus
        # Short path under /tmp: the munge socket path must stay well below the 108-byte limit of AF_UNIX.
        self.root = Path(tempfile.mkdtemp(prefix="scsynth-slurm-", dir="/tmp"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge.socket"
        self.bin = self.root / "bin"
        self.real_srun = shutil.which("srun") or "/usr/bin/srun"

    # -- configuration -----------------------------------------------------------------------------------------
    def _write_config(self) -> None:
        ctld_port, slurmd_port = _free_ports(2)
        r = self.root
        for sub in ("state", "spool", "log", "bin"):
            (r / sub).mkdir()
        lines = [
            "ClusterName=scsynthtest",
            f"SlurmctldHost={NODE}",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            # squeue keeps ended jobs this long: Snakemake's squeue status needs >= 3 x its first interval, and
            # the tests read every job of a run back from squeue when the run is over.
            "MinJobAge=3600",
            "KillWait=5",
            "InactiveLimit=0",
            "SchedulerParameters=sched_interval=1",  # a free node is used at once
            "GresTypes=gpu",
            f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb}"
            + (f" Gres=gpu:{self.gpus}" if self.gpus else "")
            + " State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        # A fake GPU: SLURM needs a character device per GPU; /dev/null is one. AutoDetect off (no NVML).
        gres = ["AutoDetect=off"] + [f"NodeName={NODE} Name=gpu File=/dev/null" for _ in range(self.gpus)]
        (r / "gres.conf").write_text("\n".join(gres) + "\n")
        # The srun shim (see the module docstring).
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec {self.real_srun} "$@"\n')
        srun.chmod(0o755)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for SLURM clients (sbatch, squeue, scancel, ... and Snakemake) talking to this cluster."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        # A job inherits the submitting environment (sbatch --export=ALL): drop leftovers of an outer job.
        for key in [k for k in env if k.startswith(("SLURM_JOB", "SLURM_STEP", "SBATCH_"))]:
            del env[key]
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client command (``sinfo``, ``squeue``, ``scancel``, ``scontrol`` ...) against this cluster."""
        return subprocess.run(list(args), env=self.env(), capture_output=True, text=True, check=check, timeout=timeout)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.root / "log" / f"{name}.out", "w") as out:  # the daemon keeps its own copy of the fd
            self.procs[name] = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                start_new_session=True,  # Ctrl-C in the terminal goes to pytest, not straight to the daemons
            )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.logs()}")

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"SLURM test cluster: {what} not ready after {timeout:.0f} s\n{self.logs()}")

    def start(self, timeout: float = 60) -> Self:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        self.root.chmod(0o755)  # munged requires the socket's directories to be searchable by everyone
        self._write_config()
        key = self.root / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o600)
        r = self.root
        self._spawn(
            "munged",
            [
                "/usr/sbin/munged", "--foreground", f"--socket={self.munge_socket}", f"--key-file={key}",
                f"--log-file={r / 'log' / 'munged.log'}", f"--pid-file={r / 'munged.pid'}",
                f"--seed-file={r / 'munged.seed'}",
            ],
        )  # fmt: skip
        self._wait("munged", self.munge_socket.exists, timeout)
        self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", ["/usr/sbin/slurmd", "-D", "-N", NODE, "-f", str(self.conf)])

        def idle() -> bool:
            proc = self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10)
            return proc.returncode == 0 and proc.stdout.strip() == "idle"

        self._wait("node idle", idle, timeout)

    def jobs(self) -> list[dict[str, str]]:
        """Jobs squeue still knows (queued, running, or ended less than MinJobAge ago), oldest first.

        Keys: id, name (Snakemake: the run ID), state, comment (Snakemake: ``rule_<rule>_wildcards_<...>``),
        tres (GPUs requested with --gpus, e.g. ``gres:gpu:1``; ``N/A`` for none).
        """
        fields = ["JobID", "Name", "State", "Comment", "tres-per-job"]
        proc = self.run("squeue", "-h", "-t", "all", "-O", ",".join(f"{f}:0|" for f in fields), check=False)
        rows = []
        for line in proc.stdout.splitlines():
            values = line.split("|")[: len(fields)]
            if len(values) == len(fields):
                rows.append(dict(zip(["id", "name", "state", "comment", "tres"], (v.strip() for v in values))))
        return sorted(rows, key=lambda row: int(row["id"]) if row["id"].isdigit() else 0)

    def stop(self) -> None:
        """Cancel remaining jobs, then stop slurmd, slurmctld and munged by PID; remove the directory."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                # Only this cluster's jobs (SLURM_CONF), and only those not finished yet.
                self.run("scancel", "--state=PENDING", check=False, timeout=10)
                self.run("scancel", "--state=RUNNING", check=False, timeout=10)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and any(
                    j["state"] in {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING"} for j in self.jobs()
                ):
                    time.sleep(0.5)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self, tail: int = 40) -> str:
        """The last lines of every daemon log, for error messages."""
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
