"""Workflow configuration checks: schema types and defaults (validate_config), read as Snakemake hands them over."""

from __future__ import annotations

import pytest
import yaml
from snakemake.cli import parse_config
from snakemake.utils import update_config

from scsynth_core.config import validate_config
from scsynth_core.errors import ConfigError
from workflow_utils import REPO, copy_workflow, snakemake

SCHEMA = REPO / "config" / "schema.yaml"


def _with_command_line(*entries: str) -> dict:
    """config/config.yaml updated by ``--config`` entries, parsed by Snakemake's own parser (nested values: text)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(config, parse_config(list(entries)))
    return config


def test_nested_command_line_numbers_booleans_and_nulls_are_read_as_the_schema_expects():
    config = _with_command_line(
        "realism={datasets: [pbmc68k_demo], models: [noise], seeds: [1, 2], test_fraction: 0.2}",
        "pilot={datasets: [pbmc68k_demo], models: [noise], replace: false}",
        "models={noise: {max_steps: null}, pca: {params: {n_latent: 4, clip_at_zero: true}}}",
        "augmentation={datasets: [pbmc68k_demo], models: [upsample], target: 2}",
    )
    assert config["realism"]["seeds"] == ["1", "2"]  # what Snakemake hands over
    validate_config(config, SCHEMA)
    assert config["realism"]["seeds"] == [1, 2] and config["realism"]["test_fraction"] == 0.2
    assert config["pilot"]["replace"] is False and config["models"]["noise"]["max_steps"] is None
    # models.<name>.params have no schema types: read as the preset's values are
    assert config["models"]["pca"]["params"] == {"n_latent": 4, "clip_at_zero": True}
    assert config["augmentation"]["target"] == "2"  # a cluster name stays text where the schema expects text
    assert config["realism"]["rf_trees"] == 1000 and config["augmentation"]["split_seed"] == 0  # defaults filled


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "realism={datasets: [pbmc68k_demo], models: [noise], seeds: [x]}",
            "config: realism.seeds[0]: 'x' is not of type 'integer' (expected an integer >= 0)",
        ),
        (
            "realism={datasets: [pbmc68k_demo], models: [noise], test_fraction: lots}",
            "config: realism.test_fraction: 'lots' is not of type 'number' (expected a number > 0 and < 1)",
        ),
        (
            "realism={datasets: [pbmc68k_demo], models: [noise], seeds: 3}",
            "config: realism.seeds: '3' is not of type 'array' (expected a list, each item an integer >= 0)",
        ),
        ("device=1", "config: device: 1 is not of type 'string' (expected one of: auto, cpu, cuda)"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key_the_value_and_what_fits(entry, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(_with_command_line(entry), SCHEMA)
    assert str(info.value) == expected


def test_several_errors_report_the_first_and_count_the_rest():
    config = _with_command_line("realism={datasets: [pbmc68k_demo], models: [noise], seeds: [-1, y]}")
    with pytest.raises(
        ConfigError,
        match=r"^config: realism\.seeds\[0\]: -1 is less than the minimum of 0 "
        r"\(and 1 more error\(s\)\)$",
    ):
        validate_config(config, SCHEMA)


def test_readme_command_line_form_dry_runs(tmp_path):
    """The README's ``--config 'realism={...}'`` form with a seed: accepted, and the run uses that seed."""
    wf = copy_workflow(tmp_path / "wf")
    proc = snakemake(
        wf, "-n", "--config", "realism={datasets: [pbmc68k_demo], models: [noise], seeds: [1]}", "experiments=[realism]"
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "realism/pbmc68k_demo/noise/seed1/" in proc.stdout and "noise/seed0/" not in proc.stdout
