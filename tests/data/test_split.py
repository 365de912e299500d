"""Balanced split, pilot subsamples, nested downsampling and their index files (known answers on real labels)."""

from __future__ import annotations

import itertools

import anndata as ad
import pandas as pd
import pytest

from scsynth_core.data import split as S
from scsynth_core.data.bundled import load_pbmc68k_reduced_counts
from scsynth_core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def demo() -> ad.AnnData:
    return load_pbmc68k_reduced_counts()


@pytest.fixture(scope="module")
def labels(demo) -> pd.Series:
    return demo.obs["bulk_labels"]


# floor(n_k * 70 / 700) for the 10 bulk labels (240, 129, 95, 68, 54, 43, 31, 19, 13, 8 cells).
TEST70 = {
    "Dendritic": 24,
    "CD14+ Monocyte": 12,
    "CD19+ B": 9,
    "CD4+/CD25 T Reg": 6,
    "CD8+ Cytotoxic T": 5,
    "CD8+/CD45RA+ Naive Cytotoxic": 4,
    "CD56+ NK": 3,
    "CD4+/CD45RO+ Memory": 1,
    "CD34+": 1,
    "CD4+/CD45RA+/CD25- Naive T": 0,
}


def _test_counts(split: pd.Series, labels: pd.Series) -> dict[str, int]:
    counts = labels[split == "test"].astype(str).value_counts()
    return {str(k): int(counts.get(k, 0)) for k in labels.astype(str).unique()}


# ------------------------------------------------------------------------------------------------ balanced split


def test_balanced_split_known_counts(labels):
    split = S.balanced_split(labels, test_cells=70, seed=0)
    assert split.name == "split" and list(split.index) == list(labels.index)
    assert set(split.unique()) == {"train", "test"}
    assert _test_counts(split, labels) == TEST70
    assert (split == "test").sum() == 65  # flooring leaves the total below the 70 target


def test_balanced_split_fraction_known_counts(labels):
    split = S.balanced_split(labels, test_fraction=0.3, seed=0)
    expected = {
        "Dendritic": 72,
        "CD14+ Monocyte": 38,
        "CD19+ B": 28,
        "CD4+/CD25 T Reg": 20,
        "CD8+ Cytotoxic T": 16,
        "CD8+/CD45RA+ Naive Cytotoxic": 12,
        "CD56+ NK": 9,
        "CD4+/CD45RO+ Memory": 5,
        "CD34+": 3,
        "CD4+/CD45RA+/CD25- Naive T": 2,
    }
    assert _test_counts(split, labels) == expected


def test_balanced_split_exact_flooring():
    # 0.29 * 100 evaluates to 28.999999999999996 in floating point; the exact floor is 29.
    assert 0.29 * 100 < 29
    labels = pd.Series(["a"] * 100 + ["b"] * 50, index=[f"c{i}" for i in range(150)])
    split = S.balanced_split(labels, test_fraction=0.29, seed=1)
    assert _test_counts(split, labels) == {"a": 29, "b": 14}


def test_balanced_split_seeds_and_files(labels, tmp_path):
    a = S.balanced_split(labels, test_cells=70, seed=4)
    b = S.balanced_split(labels, test_cells=70, seed=4)
    c = S.balanced_split(labels, test_cells=70, seed=5)
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)
    S.write_split(tmp_path / "a.tsv", a)
    S.write_split(tmp_path / "b.tsv", b)
    S.write_split(tmp_path / "c.tsv", c)
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert (tmp_path / "a.tsv").read_bytes() != (tmp_path / "c.tsv").read_bytes()
    assert (tmp_path / "a.tsv").read_text().splitlines()[0] == "cell\tsplit"
    pd.testing.assert_series_equal(S.read_split(tmp_path / "a.tsv"), a)
    assert not list(tmp_path.glob(".*part"))  # no temporary files left behind


def test_balanced_split_independent_of_category_order(labels):
    reordered = labels.cat.reorder_categories(list(reversed(labels.cat.categories)))
    pd.testing.assert_series_equal(
        S.balanced_split(labels, test_cells=70, seed=2), S.balanced_split(reordered, test_cells=70, seed=2)
    )
    as_strings = labels.astype(str)
    pd.testing.assert_series_equal(
        S.balanced_split(labels, test_cells=70, seed=2), S.balanced_split(as_strings, test_cells=70, seed=2)
    )


def test_balanced_split_errors(labels):
    with pytest.raises(ConfigError, match="exactly one"):
        S.balanced_split(labels, seed=0)
    with pytest.raises(ConfigError, match="exactly one"):
        S.balanced_split(labels, test_fraction=0.1, test_cells=70)
    with pytest.raises(ConfigError, match="test_cells"):
        S.balanced_split(labels, test_cells=701)
    with pytest.raises(ConfigError, match="test_fraction"):
        S.balanced_split(labels, test_fraction=1.5)
    with pytest.raises(DataError, match="no cluster label"):
        S.balanced_split(pd.Series(["a", None, "b"], index=["x", "y", "z"]), test_fraction=0.5)
    with pytest.raises(DataError, match="unique"):
        S.balanced_split(pd.Series(["a", "b"], index=["x", "x"]), test_fraction=0.5)


# ------------------------------------------------------------------------------------------------ pilot subsamples


def test_pilot_with_replacement(demo, tmp_path):
    names = list(demo.obs_names)
    pilot = S.pilot_subsample(names, size=1152, seed=4)
    assert len(pilot) == 1152 and set(pilot) <= set(names)
    assert len(set(pilot)) < len(pilot)  # 1,152 draws from 700 cells must repeat
    assert pilot == S.pilot_subsample(names, size=1152, seed=4)
    assert pilot != S.pilot_subsample(names, size=1152, seed=14)
    S.write_split(tmp_path / "pilot.tsv", pilot)
    assert S.read_split(tmp_path / "pilot.tsv") == pilot  # draw order and repeats survive the file


def test_pilot_without_replacement(demo):
    names = list(demo.obs_names)
    pilot = S.pilot_subsample(names, size=384, seed=4, replace=False)
    assert len(pilot) == 384 == len(set(pilot))
    with pytest.raises(ConfigError, match="exceeds"):
        S.pilot_subsample(names, size=701, seed=4, replace=False)
    with pytest.raises(ConfigError, match="positive"):
        S.pilot_subsample(names, size=0, seed=4)


def test_select_cells_with_repeats(demo):
    picks = ["AAAGCCTGGCTAAC-1", "AACACGTGGTCTTT-1", "AAAGCCTGGCTAAC-1"]
    sub = S.select_cells(demo, picks)
    assert sub.n_obs == 3 and sub.obs_names.is_unique
    assert list(sub.obs["source_cell"]) == picks
    assert (sub.X[0] != sub.X[2]).nnz == 0 and (sub.X[0] != demo["AAAGCCTGGCTAAC-1"].X).nnz == 0
    with pytest.raises(DataError, match="pilot.tsv: 1 cells are not in the data"):
        S.select_cells(demo, ["nope"], source="pilot.tsv")


# ------------------------------------------------------------------------------------------------ nested downsampling


def test_nested_downsample_sizes_and_subsets(labels):
    levels = S.nested_downsample(labels, cluster="Dendritic", seed=0)
    # max(1, floor(level * 240)) for 50, 25, 10, 5, 3, 2, 1, 0.5 %.
    assert [len(v) for v in levels.values()] == [120, 60, 24, 12, 7, 4, 2, 1]
    assert list(levels) == list(S.MAROUF_LEVELS)
    dendritic = set(labels.index[labels == "Dendritic"])
    for big, small in itertools.combinations(levels, 2):
        assert set(levels[small]) <= set(levels[big]) and big > small
    assert all(set(v) <= dendritic for v in levels.values())
    assert all(len(set(v)) == len(v) for v in levels.values())
    other = S.nested_downsample(labels, cluster="Dendritic", seed=1)
    assert other[0.5] != levels[0.5]
    assert S.nested_downsample(labels, cluster="Dendritic", seed=0) == levels


def test_nested_downsample_small_cluster_and_errors(labels):
    tiny = S.nested_downsample(labels, cluster="CD34+", levels=(0.5, 0.1, 0.005), seed=3)
    assert [len(v) for v in tiny.values()] == [6, 1, 1]  # floor(6.5), floor(1.3), at least one cell
    with pytest.raises(DataError, match="cluster 'Platelet' not found"):
        S.nested_downsample(labels, cluster="Platelet", seed=0)
    with pytest.raises(ConfigError, match="levels"):
        S.nested_downsample(labels, cluster="CD34+", levels=(0.5, 1.5), seed=0)


def test_nested_downsample_file_roundtrip(labels, tmp_path):
    levels = S.nested_downsample(labels, cluster="CD14+ Monocyte", seed=7)
    S.write_split(tmp_path / "levels.tsv", levels)
    S.write_split(tmp_path / "again.tsv", S.nested_downsample(labels, cluster="CD14+ Monocyte", seed=7))
    assert (tmp_path / "levels.tsv").read_bytes() == (tmp_path / "again.tsv").read_bytes()
    lines = (tmp_path / "levels.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["cell", "level_0.5", "level_0.25"]
    assert len(lines) == 1 + len(levels[0.5])  # one row per cell of the largest level
    assert S.read_split(tmp_path / "levels.tsv") == levels


# ------------------------------------------------------------------------------------------------ applying splits


def test_apply_split(demo, tmp_path):
    data = demo.copy()
    split = S.balanced_split(data.obs["bulk_labels"], test_fraction=0.1, seed=0)
    S.write_split(tmp_path / "split.tsv", split)
    out = S.apply_split(data, S.read_split(tmp_path / "split.tsv"), source="split.tsv")
    assert out is data
    assert list(out.obs["split"].cat.categories) == ["train", "test"]
    assert (out.obs["split"].astype(str) == split.reindex(out.obs_names)).all()

    extra = pd.concat([split, pd.Series({"GHOST-1": "test"})])
    with pytest.raises(DataError, match="split.tsv: 1 cells of the split are not in the data"):
        S.apply_split(data, extra, source="split.tsv")
    with pytest.raises(DataError, match="have no split entry"):
        S.apply_split(data, split.iloc[1:], source="split.tsv")


def test_read_split_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        S.read_split(tmp_path / "absent.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("barcode\tsplit\nA\ttrain\n")
    with pytest.raises(DataError, match="first column must be 'cell'"):
        S.read_split(bad)
    with pytest.raises(DataError, match="tab/newline"):
        S.write_split(tmp_path / "x.tsv", ["ok", "bad\tname"])


def test_resolve_target_cluster():
    from scsynth_core.data.split import resolve_target_cluster

    labels = pd.Series(list("aaaabbbcc" + "dd"), index=[f"c{i}" for i in range(11)])
    assert resolve_target_cluster(labels) == "b"
    assert resolve_target_cluster(labels, "c") == "c"
    tie = pd.Series(list("aaabbbcc"), index=[f"c{i}" for i in range(8)])
    assert resolve_target_cluster(tie) == "b"  # a and b tie at 3: sorted by name, a first
    with pytest.raises(DataError, match="target cluster 'z' not found"):
        resolve_target_cluster(labels, "z")


def test_downsampled_splits_are_nested_and_never_touch_test_cells():
    from scsynth_core.data.split import downsampled_splits

    names = [f"c{i}" for i in range(200)]
    labels = pd.Series(["t"] * 100 + ["o"] * 100, index=names)
    split = S.balanced_split(labels, test_fraction=0.3, seed=0)
    out = downsampled_splits(split, labels, cluster="t", levels=[0.5, 0.1, 0.02], seed=4)
    target_train = set(split[(split == "train") & (labels == "t")].index)  # 70 cells
    kept = {level: set(s[s == "train"].index) & target_train for level, s in out.items()}
    assert [len(kept[level]) for level in (0.5, 0.1, 0.02)] == [35, 7, 1]
    assert kept[0.02] <= kept[0.1] <= kept[0.5]
    for level, s in out.items():
        assert (s[split == "test"] == "test").all()
        assert (s[(split == "train") & (labels == "o")] == "train").all()
        assert set(s[s == "held_out"].index) == target_train - kept[level]
