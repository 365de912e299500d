"""The augmentation experiment's steps (Marouf 2020 Fig. 3, Supplementary Fig. 14): downsampling by fractions of
the training cells or of the whole cluster, and the F1 table with its pairwise rows, on a tiny dataset."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.data.split import balanced_split, nested_downsample, read_split, write_split
from scsynth_core.errors import ConfigError
from scsynth_core.experiments.augmentation import downsample_dataset, evaluate_augmentation, whole_cluster_levels

REPO = Path(__file__).resolve().parents[2]
FRACTIONS = [0.5, 0.25, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005]  # Marouf's levels
SIZES = {"0": 1500, "1": 1000, "2": 400}  # cluster "1", the second largest, is the target (auto)


def counts(rng, sizes: dict[str, int], n_genes: int = 20) -> ad.AnnData:
    """Poisson counts with one block of 5 high genes per cluster, so the clusters separate in PCA space."""
    blocks = []
    for i, n in enumerate(sizes.values()):
        rate = np.full(n_genes, 1.0)
        rate[5 * i : 5 * i + 5] = 8.0
        blocks.append(rng.poisson(rate, size=(n, n_genes)))
    adata = ad.AnnData(sp.csr_matrix(np.vstack(blocks).astype(np.float32)))
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    adata.var_names = [f"g{j}" for j in range(n_genes)]
    adata.obs["cluster"] = pd.Categorical(np.repeat(list(sizes), list(sizes.values())))
    return adata


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A prepared file and its 70/30 balanced split."""
    root = tmp_path_factory.mktemp("augmentation")
    adata = counts(np.random.default_rng(0), SIZES)
    adata.write_h5ad(root / "prepared.h5ad")
    write_split(root / "split.tsv", balanced_split(adata.obs["cluster"].astype(str), test_fraction=0.3, seed=0))
    return root


def kept_target_cells(root: Path, fraction_of: str) -> dict[float, set[str]]:
    outputs = {f: root / f"{fraction_of}_{f}.tsv" for f in FRACTIONS}
    downsample_dataset(prepared=root / "prepared.h5ad", split=root / "split.tsv", outputs=outputs, seed=1,
                       fraction_of=fraction_of)  # fmt: skip
    target = {f"c{i}" for i in range(SIZES["0"], SIZES["0"] + SIZES["1"])}
    return {f: {c for c, s in read_split(path).items() if s == "train" and c in target} for f, path in outputs.items()}


def test_fractions_of_the_whole_cluster_keep_marouf_counts(dataset):
    split = read_split(dataset / "split.tsv")
    n_train = int(sum(split[f"c{i}"] == "train" for i in range(SIZES["0"], SIZES["0"] + SIZES["1"])))
    whole, training = kept_target_cells(dataset, "cluster"), kept_target_cells(dataset, "training")
    for f in FRACTIONS:
        # known answers: 50 % of 1,000 cells = 500 (Marouf), of its 700 training cells 350 (today's default)
        assert len(whole[f]) == max(1, math.floor(round(f * 1000, 9))), f
        assert len(training[f]) == max(1, math.floor(round(f * n_train, 9))), f
    assert n_train == 700 and len(whole[0.5]) == 500 and len(training[0.5]) == 350 and len(whole[0.005]) == 5
    for larger, smaller in itertools.pairwise(FRACTIONS):  # nested, as the paper's levels
        assert whole[smaller] <= whole[larger] and training[smaller] <= training[larger]


def test_whole_cluster_levels_give_the_exact_counts_under_the_nested_rule():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n_cluster = int(rng.integers(1, 5_000))
        n_train = int(rng.integers(max(1, math.ceil(0.5 * n_cluster)), n_cluster + 1))
        labels = pd.Series("t", index=[f"x{i}" for i in range(n_train)])
        levels = whole_cluster_levels(FRACTIONS, n_cluster=n_cluster, n_train=n_train)
        kept = nested_downsample(labels, cluster="t", levels=list(levels.values()), seed=0)
        for f, level in levels.items():
            assert len(kept[level]) == max(1, math.floor(round(f * n_cluster, 9))), (f, n_cluster, n_train)


def test_a_fraction_above_the_training_share_is_a_config_error():
    with pytest.raises(ConfigError, match=r"augmentation.fractions: 0.8 of the target's 1000 cells is 800 cells"):
        whole_cluster_levels([0.5, 0.8], n_cluster=1000, n_train=700)
    with pytest.raises(ConfigError, match="fraction_of must be one of training, cluster"):
        downsample_dataset(prepared="unused", split="unused", outputs={0.5: "x"}, fraction_of="whole")


def test_f1_table_has_pair_forest_rows_and_sweep_rows(tmp_path):
    rng = np.random.default_rng(4)
    small = counts(rng, {"0": 90, "1": 60, "2": 30})
    small.write_h5ad(tmp_path / "prepared.h5ad")
    write_split(tmp_path / "split.tsv", balanced_split(small.obs["cluster"].astype(str), test_fraction=0.3, seed=0))
    counts(rng, {"1": 40}).write_h5ad(tmp_path / "generated.h5ad")
    out = tmp_path / "f1.tsv"
    evaluate_augmentation(prepared=tmp_path / "prepared.h5ad", split=tmp_path / "split.tsv", output=out,
                          generated={"m": tmp_path / "generated.h5ad"}, fraction=1.0, seed=0, n_extra=40, sweep=[20],
                          compare_with=["0"], n_trees=3)  # fmt: skip
    table = pd.read_csv(out, sep="\t", dtype={"comparison": str})
    main = table[table["n_extra"] != 20]
    assert set(zip(main["comparison"], main["forest"])) == {("rest", "all"), ("0", "all"), ("0", "pair")}
    assert main.groupby("forest").size().to_dict() == {"all": 6, "pair": 3}  # 3 variants each
    sweep = table[table["n_extra"] == 20]
    assert (sweep["forest"] == "all").all() and set(sweep["comparison"]) == {"rest", "0"}
    assert table["f1"].between(0, 1).all() and table["forest"].notna().all()


def test_no_augmentation_path_is_written_outside_the_run_folder():
    """Every augmentation rule's log and output goes through AUG/AUG_LOGS (rules/common.smk), which hold the run
    name (augmentation.run): a literal results/ or logs/augmentation path would be shared by every run."""
    literal = [
        f"{path.name}:{n}"
        for path in sorted((REPO / "rules").glob("*.smk"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ("results/augmentation" in line or "logs/augmentation" in line) and not line.lstrip().startswith("#")
    ]
    assert not literal, f"augmentation paths written out instead of AUG/AUG_LOGS: {literal}"
