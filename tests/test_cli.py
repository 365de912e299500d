"""The ``scsynth`` command on a user's h5ad: the same steps as the workflow, with one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scsynth_core.cli import main


@pytest.fixture
def user_h5ad(tmp_path, demo_counts):
    path = tmp_path / "user.h5ad"
    demo_counts.write_h5ad(path)
    return path


def _prepare_and_split(tmp_path, user_h5ad):
    """`scsynth prepare` (scanpy_default, bulk_labels as clusters), then `scsynth split` (seed 3) of the file."""
    prepared, split = tmp_path / "prepared.h5ad", tmp_path / "split.tsv"
    assert (
        main(
            [
                "prepare",
                "--input",
                str(user_h5ad),
                "--output",
                str(prepared),
                "--recipe",
                "scanpy_default",
                "--label-key",
                "bulk_labels",
            ]
        )
        == 0
    )
    assert main(["split", "--input", str(prepared), "--output", str(split), "--seed", "3"]) == 0
    return prepared, split


def test_cli_chain_prepare_split_train_generate_evaluate(tmp_path, user_h5ad, capsys):
    prepared, split = _prepare_and_split(tmp_path, user_h5ad)
    model, generated, metrics = tmp_path / "model.pt", tmp_path / "gen.h5ad", tmp_path / "metrics.json"
    assert (
        main(["train", "--input", str(prepared), "--split", str(split), "--model", "upsample", "--output", str(model)])
        == 0
    )
    prep = ad.read_h5ad(prepared)
    labels = prep.obs["cluster"].value_counts().index[:2]
    request = f"{labels[0]}=40,{labels[1]}=10"
    assert main(["generate", "--model", str(model), "--output", str(generated), "--labels", request]) == 0
    gen = ad.read_h5ad(generated)
    counts = gen.obs["cluster"].value_counts()
    assert counts[counts > 0].to_dict() == {labels[0]: 40, labels[1]: 10}
    train_cells = pd.read_csv(split, sep="\t").query("split == 'train'")["cell"]
    train_rows = {tuple(r) for r in prep[train_cells].X.toarray()}
    assert all(tuple(r) in train_rows for r in gen.X.toarray())  # upsampling never leaks test cells
    assert (
        main(
            [
                "evaluate",
                "--real",
                str(prepared),
                "--split",
                str(split),
                "--generated",
                str(generated),
                "--output",
                str(metrics),
                "--rf-trees",
                "50",
            ]
        )
        == 0
    )
    result = json.loads(metrics.read_text())
    # Resampled training cells of two clusters vs all test cells: the forest separates them only partly.
    assert 0.4 < result["rf_auc_mean"] < 1.0 and result["correlation_discrepancy"] >= 0
    assert result["n_generated"] == 50 and result["n_real"] == (pd.read_csv(split, sep="\t")["split"] == "test").sum()


def _bad_copy(tmp_path, demo_counts, how):
    adata = demo_counts.copy()
    adata.X = adata.X.astype(np.float32)
    if how == "negative":
        adata.X.data[5] = -3
    elif how == "nan":
        adata.X.data[5] = np.nan
    path = tmp_path / f"{how}.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.mark.parametrize(("how", "message"), [("negative", "negative values"), ("nan", "NaN")])
def test_bad_counts_give_one_line_error_and_no_output(tmp_path, demo_counts, capsys, how, message):
    path = _bad_copy(tmp_path, demo_counts, how)
    out = tmp_path / "prepared.h5ad"
    assert main(["prepare", "--input", str(path), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_corrupt_file_and_missing_label_column(tmp_path, user_h5ad, capsys):
    corrupt = tmp_path / "corrupt.h5ad"
    corrupt.write_bytes(user_h5ad.read_bytes()[:5000])
    assert main(["prepare", "--input", str(corrupt), "--output", str(tmp_path / "p.h5ad")]) == 1
    assert "not a readable h5ad file" in capsys.readouterr().err
    assert (
        main(["prepare", "--input", str(user_h5ad), "--output", str(tmp_path / "p.h5ad"), "--label-key", "celltype"])
        == 1
    )
    err = capsys.readouterr().err
    assert "obs['celltype'] does not exist" in err and "bulk_labels" in err
    assert not (tmp_path / "p.h5ad").exists()


def test_unknown_model_and_bad_labels_argument(tmp_path, user_h5ad, capsys):
    assert main(["train", "--input", str(user_h5ad), "--model", "nope", "--output", str(tmp_path / "m.pt")]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert (
        main(["generate", "--model", str(tmp_path / "m.pt"), "--output", str(tmp_path / "g.h5ad"), "--labels", "B=x"])
        == 1
    )
    assert "LABEL=COUNT" in capsys.readouterr().err


def test_generate_streams_the_same_cells_as_sample_and_logs_the_size(tmp_path, user_h5ad, caplog, capsys):
    from scsynth_core.models import load_model

    model, out = tmp_path / "m.pt", tmp_path / "g.h5ad"
    assert main(["train", "--input", str(user_h5ad), "--model", "noise", "--output", str(model)]) == 0
    with caplog.at_level("INFO", logger="scsynth"):
        assert (
            main(
                [
                    "generate",
                    "--model",
                    str(model),
                    "--output",
                    str(out),
                    "--n-cells",
                    "1500",
                    "--batch-size",
                    "400",
                    "--seed",
                    "2",
                ]
            )
            == 0
        )
    assert "writing 1500 cells x 765 genes" in caplog.text and "before compression" in caplog.text
    written = ad.read_h5ad(out)
    expected = load_model(model).sample(1500, seed=2, batch_size=400)
    assert written.shape == (1500, 765) and (written.X != expected.X).nnz == 0
    assert list(written.obs_names) == list(expected.obs_names) and written.uns["scsynth"]["generation_seconds"] >= 0
    assert main(["generate", "--model", str(model), "--output", str(tmp_path / "none.h5ad"), "--n-cells", "0"]) == 1
    assert "n_cells must be a positive integer, got 0" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if "none" in p.name) == []


def test_console_script_is_installed():
    proc = subprocess.run(
        [sys.executable, "-m", "scsynth_core.cli", "models"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "upsample\tcounts\tconditional" in proc.stdout


@pytest.mark.parametrize("command", ["train", "generate", "evaluate"])
def test_unwritable_output_fails_in_one_line_before_any_work(tmp_path, user_h5ad, capsys, monkeypatch, command):
    from scsynth_core import steps
    from scsynth_core.experiments import realism

    for module, step in ((steps, "train_model"), (steps, "generate_cells"), (realism, "evaluate_cells")):
        monkeypatch.setattr(module, step, lambda **_: pytest.fail("the work started before the output was checked"))
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output folder should be")
    out = blocker / "run" / "out"
    argv = {
        "train": ["train", "--input", str(user_h5ad), "--model", "upsample", "--output", str(out)],
        "generate": ["generate", "--model", str(tmp_path / "m.pt"), "--output", str(out), "--n-cells", "5"],
        "evaluate": ["evaluate", "--real", str(user_h5ad), "--generated", str(user_h5ad), "--output", str(out)],
    }[command]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"scsynth: error: {out}: cannot write the output: {blocker} is a file, not a folder"]


def test_evaluate_unknown_label_key_names_it_and_the_columns(tmp_path, user_h5ad, capsys):
    metrics = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                "--real",
                str(user_h5ad),
                "--generated",
                str(user_h5ad),
                "--output",
                str(metrics),
                "--label-key",
                "nope",
                "--rf-trees",
                "5",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    columns = "bulk_labels, louvain, phase, n_counts_all_genes, n_genes_all_genes, percent_mito"
    assert err == [f"scsynth: error: {user_h5ad}: --label-key: no obs column 'nope' (columns: {columns})"]
    assert not metrics.exists()


def test_evaluate_label_key_defaults_to_cluster_where_the_file_has_one(tmp_path, demo, monkeypatch, caplog):
    from scsynth_core.experiments import realism

    seen = []
    monkeypatch.setattr(
        realism, "evaluate_cells", lambda **kw: seen.append(kw["label_key"]) or Path(kw["output"]).write_text("{}")
    )
    real, out = tmp_path / "real.h5ad", str(tmp_path / "m.json")
    demo.write_h5ad(real)
    with caplog.at_level("WARNING", logger="scsynth"):
        assert main(["evaluate", "--real", str(real), "--generated", str(real), "--output", out]) == 0
    assert "no obs['cluster'] column and no --label-key" in caplog.text
    demo.obs["cluster"] = demo.obs["bulk_labels"]
    demo.write_h5ad(real)
    assert main(["evaluate", "--real", str(real), "--generated", str(real), "--output", out]) == 0
    assert seen == [None, "cluster"]


@pytest.mark.parametrize(("value", "shown"), [("-1", "-1"), ("ten", "'ten'")])
def test_a_bad_hyperparameter_fails_in_one_line_before_reading_data(tmp_path, capsys, monkeypatch, value, shown):
    """Issue 18: ``--set shape_max=-1`` (or ``ten``) used to train, then crash in generation with a traceback."""
    from scsynth_core import steps

    monkeypatch.setattr(steps, "load_prepared", lambda *a, **k: pytest.fail("data read before the values were checked"))
    model = tmp_path / "m.pt"
    assert (
        main(
            [
                "train",
                "--input",
                str(tmp_path / "absent.h5ad"),
                "--model",
                "noise",
                "--output",
                str(model),
                "--set",
                f"shape_max={value}",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"scsynth: error: model 'noise': shape_max must be a number >= 0, got {shown}"]
    assert not model.exists()


@pytest.mark.parametrize("with_split", [True, False])
def test_evaluate_representation_option_reaches_the_metrics(tmp_path, user_h5ad, monkeypatch, with_split):
    """Issue 15: ``scsynth evaluate --representation marouf`` scores in Marouf's PCA (fitted on the test cells with
    a split, on all real cells without), the default in this project's."""
    from scsynth_core.experiments import realism
    from scsynth_core.metrics.representation import fit_marouf_representation

    prepared, split = _prepare_and_split(tmp_path, user_h5ad)
    used = []
    monkeypatch.setattr(
        realism,
        "_realism_of",
        lambda real, generated, *, representation, **kw: (
            used.append((representation, real.n_obs)) or ({"n_real": real.n_obs}, None, None)
        ),
    )
    args = ["evaluate", "--real", str(prepared), "--generated", str(prepared), "--output", str(tmp_path / "m.json")]
    args += ["--split", str(split)] if with_split else []
    assert main(args) == 0 and main([*args, "--representation", "marouf"]) == 0
    (ours, n_ours), (marouf, n_marouf) = used
    assert (ours.kind, marouf.kind) == ("scsynth", "marouf") and n_ours == n_marouf
    real = ad.read_h5ad(prepared)
    if with_split:
        test_cells = pd.read_csv(split, sep="\t").query("split == 'test'")["cell"]
        real = real[test_cells.to_numpy()]
    expected = fit_marouf_representation(real, seed=0)
    np.testing.assert_allclose(np.abs(marouf.components), np.abs(expected.components), atol=1e-8)
    with pytest.raises(SystemExit):
        main([*args, "--representation", "pca"])
