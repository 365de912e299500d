"""The realism evaluation steps with today's metrics (config ``realism.metrics``), on the 700 demo cells without a
Snakemake run: the papers' numbers stay as they were, today's join metrics.json, the run's table, the summary,
the leaderboard and a figure, in the protocol's PCA (fitted on training cells only)."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

from realism_demo import write_demo_split
from scsynth_core import steps
from scsynth_core.config import check_config, validate_config
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.experiments import realism
from scsynth_core.leaderboard import is_better
from scsynth_core.metrics.modern import DIRECTIONS, GROUP_KEYS, METRICS

REPO = Path(__file__).resolve().parents[2]
ALL = ["papers", *METRICS]


@pytest.fixture(scope="module")
def protocol(tmp_path_factory, demo_counts) -> dict:
    """Prepared demo cells, a 70/30 split, the protocol's PCA and marker genes, and two generated sets: the test
    cells with Poisson noise on every count (with cell types) and the same without cell types."""
    root = tmp_path_factory.mktemp("realism")
    prepared, split = write_demo_split(root, demo_counts)
    reference = {"representation": root / "representation.npz", "markers": root / "markers.tsv"}
    realism.build_realism_representation(prepared=prepared, split=split, representation=reference["representation"])
    realism.build_marker_genes(prepared=prepared, markers=reference["markers"])
    test = steps.load_prepared(prepared, split, subset="test")
    rng = np.random.default_rng(0)
    noisy = ad.AnnData(sp.csr_matrix(rng.poisson(test.X.toarray() + 1.0).astype(np.float32)), var=test.var[[]],
                       obs=test.obs[["cluster"]].copy())  # fmt: skip
    noisy.obs_names = [f"gen{i}" for i in range(noisy.n_obs)]
    generated = {"labelled": root / "labelled.h5ad", "unlabelled": root / "unlabelled.h5ad"}
    noisy.write_h5ad(generated["labelled"])
    ad.AnnData(noisy.X, var=noisy.var).write_h5ad(generated["unlabelled"])
    return {"root": root, "real": prepared, "split": split, **reference, "generated": generated}


def _run(protocol, name: str, metrics, *, model: str | None = None, control: bool = False) -> Path:
    """Evaluate one generated set (or the real control) into ``root/ds/<model>/seed0/``; its metrics.json."""
    run = protocol["root"] / "ds" / (model or name) / "seed0"
    run.mkdir(parents=True, exist_ok=True)
    kwargs = {"real": protocol["real"], "split": protocol["split"], "representation": protocol["representation"],
              "markers": protocol["markers"], "output": run / "metrics.json", "roc": run / "roc.tsv",
              "heatmaps": {"activa": run / "heatmap.tsv"}, "n_trees": 10, "seed": 0, "metrics": metrics,
              "modern": run / "modern_metrics.tsv" if len(metrics) > 1 else None}  # fmt: skip
    if control:
        realism.evaluate_real_control(**kwargs)
    else:
        realism.evaluate_realism(generated=protocol["generated"][name], **kwargs)
    return run / "metrics.json"


@pytest.fixture(scope="module")
def runs(protocol) -> dict[str, Path]:
    """metrics.json of: the labelled set with the papers' panel only and with every group, the unlabelled set
    and the real control with every group."""
    return {
        "papers": _run(protocol, "labelled", ["papers"], model="papers_only"),
        "labelled": _run(protocol, "labelled", ALL),
        "unlabelled": _run(protocol, "unlabelled", ALL),
        "real_control": _run(protocol, "", ALL, model="real_control", control=True),
    }


def test_todays_metrics_leave_the_papers_numbers_unchanged(runs):
    before = json.loads(runs["papers"].read_text())
    after = json.loads(runs["labelled"].read_text())
    assert {key: after[key] for key in before} == before
    overall = {key for keys in GROUP_KEYS.values() for key in keys}
    assert set(after) - set(before) == overall | {"n_compared"}
    assert not (runs["papers"].parent / "modern_metrics.tsv").exists()


def test_the_runs_table_has_every_value_and_metrics_json_the_overall_ones(runs):
    values = json.loads(runs["labelled"].read_text())
    table = pd.read_csv(runs["labelled"].parent / "modern_metrics.tsv", sep="\t", keep_default_na=False,
                        na_values={"value": [""]})  # fmt: skip
    overall = table[table["cell_type"] == ""].set_index("metric")["value"]
    for key in DIRECTIONS:
        assert overall[key] == pytest.approx(values[key]), key
    # per cell type: every type with at least 20 test cells, e.g. W2 and coverage of the CD14+ monocytes
    per_type = table[table["cell_type"] != ""]
    assert {"w2", "knn_coverage", "de_lfc_pearson"} <= set(per_type.loc[per_type["cell_type"] == "CD14+ Monocyte",
                                                                          "metric"])  # fmt: skip
    # Without cell types in the generated cells: overall values only, DE recovery missing (null in JSON).
    unlabelled = json.loads(runs["unlabelled"].read_text())
    assert all(unlabelled[key] is None for key in GROUP_KEYS["de"]) and unlabelled["w2"] > 0
    table = pd.read_csv(runs["unlabelled"].parent / "modern_metrics.tsv", sep="\t", keep_default_na=False)
    assert set(table["cell_type"]) == {""}


def test_the_real_control_looks_real_in_the_protocols_pca(runs):
    """Real training cells against real test cells, both outside the PCA's fit: near the ideal (a PCA fitted on
    the test cells would give recall near 0, :mod:`scsynth_core.metrics.modern`), and better than the noisy
    copy on every overall metric."""
    control = json.loads(runs["real_control"].read_text())
    noisy = json.loads(runs["labelled"].read_text())
    assert control["knn_recall"] > 0.7 and abs(control["nn1_accuracy"] - 0.5) < 0.15
    worse = [key for key, way in DIRECTIONS.items() if not is_better(control[key], noisy[key], way)]
    assert not worse


def test_summary_leaderboard_and_figure_carry_todays_metrics(runs, protocol, tmp_path):
    root = protocol["root"] / "ds"
    summary, board = tmp_path / "summary.tsv", tmp_path / "leaderboard.tsv"
    identities = [{"dataset": "ds", "model": model, "replicate": "seed0"} for model in ("labelled", "real_control")]
    realism.summarise_metrics(inputs=[runs["labelled"], runs["real_control"]], runs=identities, output=summary)
    frame = pd.read_csv(summary, sep="\t")
    assert list(frame.columns[:12]) == realism.SUMMARY_COLUMNS
    today = [c for c in frame.columns if c in realism.modern_columns()]
    assert list(frame.columns[-len(today) :]) == today == realism.modern_columns()  # after the papers' columns
    realism.leaderboard(summaries=[summary], output=board)
    table = pd.read_csv(board, sep="\t").set_index("model")
    assert table.loc["labelled", "w2_mean"] == pytest.approx(frame.set_index("model").loc["labelled", "w2"], abs=1e-4)
    figure = tmp_path / "modern.png"
    realism.plot_modern_metrics(summary=summary, output=figure)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The per-type tables of all runs, with each run's identity as given; cell types stay text.
    long = tmp_path / "modern_metrics.tsv"
    realism.summarise_modern_metrics(inputs=[root / "labelled/seed0/modern_metrics.tsv",
                                           root / "real_control/seed0/modern_metrics.tsv"], runs=identities,
                                     output=long)  # fmt: skip
    rows = pd.read_csv(long, sep="\t", keep_default_na=False, na_values={"value": [""]})
    assert list(rows.columns) == ["dataset", "model", "replicate", "metric", "cell_type", "value"]
    assert set(rows["model"]) == {"labelled", "real_control"} and set(rows["dataset"]) == {"ds"}
    control_w2 = rows.query("model == 'real_control' and metric == 'w2' and cell_type == ''")["value"]
    assert control_w2.item() == pytest.approx(json.loads(runs["real_control"].read_text())["w2"])


def test_papers_only_summary_has_no_figure_of_todays_metrics(runs, tmp_path):
    summary = tmp_path / "summary.tsv"
    realism.summarise_metrics(inputs=[runs["papers"]], runs=[{"dataset": "ds", "model": "papers_only",
                                                              "replicate": "seed0"}], output=summary)  # fmt: skip
    assert not set(realism.modern_columns()) & set(pd.read_csv(summary, sep="\t").columns)
    with pytest.raises(DataError, match="no column of today's metrics"):
        realism.plot_modern_metrics(summary=summary, output=tmp_path / "x.png")


def test_metrics_without_papers_or_with_unknown_groups_are_config_errors(protocol):
    with pytest.raises(ConfigError, match="must include 'papers'"):
        _run(protocol, "labelled", ["wasserstein"], model="bad")
    with pytest.raises(ConfigError, match="unknown or empty metric group.*'fid'"):
        _run(protocol, "labelled", ["papers", "fid"], model="bad")


def test_config_metrics_key_defaults_to_the_papers_and_names_every_group():
    schema = yaml.safe_load((REPO / "config/schema.yaml").read_text())
    key = schema["properties"]["realism"]["properties"]["metrics"]
    assert key["items"]["enum"] == ALL and key["default"] == ["papers"]
    config = {"experiments": ["realism"], "realism": {"datasets": ["pbmc68k_demo"], "models": ["noise"]}}
    validate_config(config, REPO / "config/schema.yaml")
    assert config["realism"]["metrics"] == ["papers"]
    registry = {"pbmc68k_demo": {}}
    check_config(config, registry)
    config["realism"]["metrics"] = ["mmd", "prdc"]
    with pytest.raises(ConfigError, match=r"realism.metrics: \['mmd', 'prdc'\] must include 'papers'"):
        check_config(config, registry)
    config["realism"]["metrics"] = ["papers", "fid"]
    with pytest.raises(ConfigError, match="realism.metrics.*'fid' is not one of"):
        validate_config(config, REPO / "config/schema.yaml")
