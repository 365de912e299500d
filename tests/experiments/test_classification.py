"""ACTINN accuracy and F1 per dataset (Heydari 2022 Supp. Tables S6-S7), the realism experiment's classification
step, on the embedded PBMC cells (FACS-sorted types as clusters) at tiny settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scsynth_core.errors import DataError
from scsynth_core.experiments.classification import actinn_classification, summarise_actinn

#: A short ACTINN: 8 epochs of the 490 training cells at 20x the paper's learning rate (test accuracy 0.80).
QUICK = {"epochs": 8, "learning_rate": 2e-3}


@pytest.fixture(scope="module")
def prepared(demo_counts, tmp_path_factory):
    """The demo cells as a prepared dataset (counts, obs['cluster']) with a 70/30 balanced split file."""
    from scsynth_core.data.split import balanced_split, write_split

    folder = tmp_path_factory.mktemp("actinn")
    cells = demo_counts.copy()
    cells.obs["cluster"] = cells.obs["bulk_labels"].astype(str).astype("category")
    cells.write_h5ad(folder / "prepared.h5ad")
    split = balanced_split(cells.obs["cluster"], test_fraction=0.3, seed=0)
    write_split(folder / "split.tsv", split)
    return folder, split


def _run(folder, **kwargs):
    out = {name: folder / f"{name}.tsv" for name in ("scores", "per_type")}
    actinn_classification(
        prepared=folder / "prepared.h5ad",
        split=folder / "split.tsv",
        dataset="demo",
        seed=0,
        preset="demo",
        params=QUICK,
        device="cpu",
        threads=1,
        **out,
        **kwargs,
    )
    return pd.read_csv(out["scores"], sep="\t"), pd.read_csv(out["per_type"], sep="\t")


def test_actinn_is_trained_on_training_cells_and_scored_on_test_cells(prepared, demo_counts):
    from scsynth_core.metrics.classification import classification_scores
    from scsynth_core.models.actinn import ACTINN

    folder, split = prepared
    scores, per_type = _run(folder, model=folder / "actinn.pt")
    row = scores.iloc[0]
    assert list(scores["classifier"]) == ["actinn"] and (row["dataset"], row["seed"]) == ("demo", 0)
    assert (row["n_train"], row["n_test"]) == ((split == "train").sum(), (split == "test").sum())
    # the saved classifier scores the same on the test cells, and was fitted on the training cells' types
    test = demo_counts[split.index[split == "test"]]
    clf = ACTINN.load(folder / "actinn.pt", device="cpu")
    again = classification_scores(test.obs["bulk_labels"].astype(str), clf.predict(test))
    assert row[["accuracy", "macro_f1", "weighted_f1"]].to_dict() == pytest.approx(
        {k: again[k] for k in ("accuracy", "macro_f1", "weighted_f1")}
    )
    majority = test.obs["bulk_labels"].value_counts(normalize=True).max()
    assert row["accuracy"] > majority + 0.2, (row["accuracy"], majority)  # it learned the types
    assert per_type["support"].sum() == row["n_test"] and set(per_type["classifier"]) == {"actinn"}
    assert np.isclose(per_type["f1"].mean(), row["macro_f1"])  # macro-F1 is the unweighted mean over types


def test_activa_conditioner_is_scored_beside_actinn(prepared, tmp_path):
    from scsynth_core.models.activa import ACTIVA
    from scsynth_core.steps import load_prepared

    folder, _ = prepared
    tiny = {"latent_dim": 4, "encoder_layers": [8], "decoder_layers": [8], "classifier_epochs": 2, "epochs": 1}
    activa = ACTIVA("demo", **tiny)
    activa.fit(
        load_prepared(folder / "prepared.h5ad", folder / "split.tsv", subset="train"),
        label_key="cluster",
        seed=0,
        device="cpu",
        progress=False,
        max_steps=1,
    )
    activa.save(tmp_path / "activa.pt")
    scores, per_type = _run(folder, activa=tmp_path / "activa.pt")
    assert list(scores["classifier"]) == ["actinn", "activa_conditioner"]
    test = load_prepared(folder / "prepared.h5ad", folder / "split.tsv", subset="test")
    expected = activa.actinn.evaluate(test, "cluster")
    conditioner = scores.set_index("classifier").loc["activa_conditioner"]
    assert conditioner[["accuracy", "macro_f1"]].to_dict() == pytest.approx(
        {k: expected[k] for k in ("accuracy", "macro_f1")}
    )
    assert set(per_type["classifier"]) == {"actinn", "activa_conditioner"}
    unlabelled = ACTIVA("demo", **tiny)
    unlabelled.fit(test, seed=0, device="cpu", progress=False, max_steps=1)
    unlabelled.save(tmp_path / "introvae.pt")
    with pytest.raises(DataError, match="introvae.pt: .*no classifier"):
        _run(folder, activa=tmp_path / "introvae.pt")


def test_summary_gives_mean_and_sd_over_seeds(tmp_path):
    rows = [("a", 0, 0.8, 0.6, 0.7), ("a", 1, 0.6, 0.4, 0.5), ("b", 0, 0.9, 0.9, 0.9)]
    paths = []
    for i, (classifier, seed, acc, macro, weighted) in enumerate(rows):
        paths.append(tmp_path / f"{i}.tsv")
        pd.DataFrame(
            [
                {
                    "dataset": "d",
                    "seed": seed,
                    "classifier": classifier,
                    "n_train": 70,
                    "n_test": 30,
                    "accuracy": acc,
                    "macro_f1": macro,
                    "weighted_f1": weighted,
                }
            ]
        ).to_csv(paths[-1], sep="\t", index=False)
    summarise_actinn(inputs=paths, output=tmp_path / "summary.tsv")
    table = pd.read_csv(tmp_path / "summary.tsv", sep="\t").set_index("classifier")
    assert list(table.index) == ["a", "b"] and table.loc["a", "n_seeds"] == 2 and table.loc["b", "n_seeds"] == 1
    assert table.loc["a", "accuracy_mean"] == pytest.approx(0.7)
    assert table.loc["a", "accuracy_sd"] == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert table.loc["a", "macro_f1_mean"] == pytest.approx(0.5) and np.isnan(table.loc["b", "accuracy_sd"])


@pytest.mark.workflow
def test_dry_run_has_the_actinn_rules_when_the_realism_config_asks(tmp_path):
    from workflow_utils import configfile_args, copy_workflow, job_stats, snakemake

    wf = copy_workflow(tmp_path / "wf")
    extra = "realism: {datasets: [pbmc68k_demo], models: [upsample, activa], seeds: [0, 1], actinn_tables: true}"
    proc = snakemake(wf, "-n", *configfile_args(wf, f"experiments: [realism]\n{extra}\n"), check=True)
    stats = job_stats(proc.stdout)
    assert stats["actinn_classification"] == 2 and stats["actinn_summary"] == 1  # one per seed; one per dataset
    # ACTIVA's conditioner is scored from its model file of the same split
    assert (
        "input: results/realism/pbmc68k_demo/activa/seed1/model.pt, results/data/pbmc68k_demo/prepared.h5ad, "
        "results/data/pbmc68k_demo/splits/test0.3_seed1.tsv" in proc.stdout
    )
