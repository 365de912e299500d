"""Execution profiles (profiles/*/config.yaml) and the GPU resources that executors see.

The GPU-capable jobs (training and generation) carry ``gpu`` only when the config asks for a GPU; every other
job carries no ``gpu`` key at all, because the Kubernetes executor treats any ``gpu`` key (even 0) as a GPU
request and then fails without ``gpu_manufacturer``. Checked on dry runs of all five experiments; the resulting
jobs are then given to the Kubernetes plugin's own pod builder (its API client mocked: no cluster here).
"""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from unittest import mock

import pytest
import yaml

from workflow_utils import REPO, copy_workflow, job_resources, snakemake

# The rules whose jobs can use a GPU: `resources: **GPU_RESOURCES` (rules/common.smk).
GPU_CAPABLE = {
    "train_model",
    "generate_cells",
    "pilot_replicates",
    "pilot_zero_inflation",
    "disentanglement_run",
    "disentanglement_code_data",
    "perturbation_run",
}
GPU_KEYS = {"gpu", "gpu_manufacturer"}
# All five experiments at demo scale, so that every GPU-capable rule has jobs.
ALL_EXPERIMENTS = [
    "--configfile",
    "config/config.yaml",
    "config/experiments/disentanglement_demo.yaml",
    "config/experiments/perturbation_demo.yaml",
    "--config",
    "experiments=[realism,augmentation,pilot,disentanglement,perturbation]",
]
# What a profile adds with `set-resources` (here on the command line) for `device: auto`.
PROFILE_GPUS = ["train_model:gpu=1", "generate_cells:gpu=1", "generate_cells:gpu_manufacturer=amd"]
PROFILES = sorted(p.parent.name for p in (REPO / "profiles").glob("*/config.yaml"))


@pytest.fixture(scope="module")
def dry_run_jobs(tmp_path_factory) -> dict[str, list[tuple[str, dict]]]:
    """{device: [(rule, resources), ...]} of dry runs of all experiments (no profile: the rules' own values)."""
    wf = copy_workflow(tmp_path_factory.mktemp("profiles") / "wf")
    out = {}
    for device in ("cuda", "auto", "cpu"):
        # auto: a profile's set-resources asks for GPUs on two rules, one of them on AMD hardware.
        extra = ["--set-resources", *PROFILE_GPUS] if device == "auto" else []
        args = ["-n", "--workflow-profile", "none", *ALL_EXPERIMENTS, f"device={device}", *extra]
        proc = snakemake(wf, *args, check=True)
        out[device] = job_resources(proc.stdout)
    return out


def test_only_gpu_capable_jobs_carry_gpu_resources(dry_run_jobs):
    cuda = dry_run_jobs["cuda"]
    assert {rule for rule, _ in cuda} >= GPU_CAPABLE | {"import_dataset", "evaluate_realism", "all"}
    for rule, resources in cuda:
        if rule in GPU_CAPABLE:
            assert resources["gpu"] == 1 and resources["gpu_manufacturer"] == "nvidia", (rule, resources)
        else:
            assert not GPU_KEYS & set(resources), (rule, resources)
    # auto: no GPU unless a profile asks; the rules name the manufacturer, which the profile may change.
    for rule, resources in dry_run_jobs["auto"]:
        assert resources.get("gpu") == (1 if rule in {"train_model", "generate_cells"} else None), (rule, resources)
        expected = {"generate_cells": "amd"}.get(rule, "nvidia") if rule in GPU_CAPABLE else None
        assert resources.get("gpu_manufacturer") == expected, (rule, resources)
    assert all(not GPU_KEYS & set(resources) for _, resources in dry_run_jobs["cpu"])
    assert len(dry_run_jobs["cpu"]) == len(cuda)  # the device changes resources, never the jobs


def _parse_profile(name: str):
    """Snakemake's own command-line parsing with the profile (unknown keys exit with 'unrecognized arguments')."""
    from snakemake.cli import parse_args

    _, args = parse_args(["--snakefile", str(REPO / "Snakefile"), "--workflow-profile", str(REPO / "profiles" / name)])
    return args


@pytest.mark.parametrize("name", PROFILES)
def test_profile_keys_are_snakemake_options(name):
    """Every key of every profile is an option of Snakemake or of an installed executor plugin."""
    text = yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text())
    executor = text.get("executor")
    if executor and executor != "local":
        pytest.importorskip(f"snakemake_executor_plugin_{executor}")
    args = _parse_profile(name)
    assert args.executor == executor
    assert args.executor is not None or name == "default"


def test_kubernetes_profile_is_accepted_by_the_plugin():
    pytest.importorskip("snakemake_executor_plugin_kubernetes")
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    args = _parse_profile("kubernetes")
    assert args.executor == "kubernetes"
    # Pods share no file system with Snakemake: without a default storage Snakemake refuses to start.
    assert args.default_storage_provider and args.default_storage_prefix
    assert args.container_image and "ADAPT" in args.container_image  # a documented placeholder
    settings = ExecutorPluginRegistry().get_plugin("kubernetes").get_settings(args)
    profile = yaml.safe_load((REPO / "profiles" / "kubernetes" / "config.yaml").read_text())
    assert settings.namespace == profile["kubernetes-namespace"]


def _pod(resources: dict) -> dict:
    """The Kubernetes Job that the plugin would create for a job with these resources (API client mocked)."""
    plugin = pytest.importorskip("snakemake_executor_plugin_kubernetes")
    executor = plugin.Executor.__new__(plugin.Executor)  # skips __post_init__, which connects to a cluster
    executor.__dict__.update(
        logger=logging.getLogger("k8s-test"),
        lock=threading.Lock(),
        run_namespace="test",
        namespace="default",
        container_image="scsynth:test",
        persistent_volumes=[],
        privileged=False,
        k8s_cpu_scalar=0.95,
        k8s_service_account_name=None,
        secret_envvars={},
        batchapi=mock.Mock(),
        format_job_exec=lambda job: "python -m snakemake ...",
        report_job_submission=lambda info: None,
    )
    job = SimpleNamespace(resources=resources, jobid=1, attempt=1, is_containerized=False)
    executor.run_job(job)
    (_, body), _ = executor.batchapi.create_namespaced_job.call_args
    return body.to_dict()


def _gpu_vendor(device: str, rule: str) -> str | None:
    """Which GPU a job of the dry runs asks for (see PROFILE_GPUS for auto)."""
    if device == "cuda" and rule in GPU_CAPABLE:
        return "nvidia"
    return {"train_model": "nvidia", "generate_cells": "amd"}.get(rule) if device == "auto" else None


def test_kubernetes_pods_ask_for_a_gpu_exactly_for_gpu_jobs(dry_run_jobs):
    """GPU jobs -> a <vendor>.com/gpu request and that vendor's toleration; every other job is a plain CPU pod.
    Before, CPU jobs carried gpu=0 and the plugin raised 'GPU requested but no manufacturer set'."""
    for device, jobs in dry_run_jobs.items():
        for rule, resources in dict(jobs).items():
            pod = _pod(resources)["spec"]["template"]["spec"]
            requests = pod["containers"][0]["resources"]["requests"]
            vendor = _gpu_vendor(device, rule)
            gpus = {key: value for key, value in requests.items() if key.endswith(".com/gpu")}
            assert gpus == ({f"{vendor}.com/gpu": "1"} if vendor else {}), (device, rule, requests)
            tolerations = [t["key"] for t in pod["tolerations"] or []]
            assert tolerations == ([f"{vendor}.com/gpu"] if vendor else []), (device, rule, tolerations)
            if "mem_mb" in resources:
                assert requests["memory"] == f"{resources['mem_mb']}M"
