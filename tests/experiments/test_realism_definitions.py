"""The papers' own definitions in the realism steps (issue 15): Marouf's representation, both papers' marker
heatmaps (Heydari Fig. 4, Marouf Fig. 1d on the log scale) and the embeddings' marker gene by name; on the 700 demo
cells without a Snakemake run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from realism_demo import write_demo_split
from scsynth_core import steps
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.experiments import realism
from scsynth_core.metrics.correlation import marker_correlation_frame
from scsynth_core.metrics.representation import SharedRepresentation, protocol_cells


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_counts) -> dict:
    """Demo cells typed by bulk_labels, a 70/30 split and the dataset's marker table."""
    root = tmp_path_factory.mktemp("definitions")
    prepared, split = write_demo_split(root, demo_counts)
    markers = root / "markers.tsv"
    realism.build_marker_genes(prepared=prepared, markers=markers)
    return {"root": root, "prepared": prepared, "split": split, "markers": markers}


def test_marouf_representation_step_fits_on_the_test_cells(reference):
    """realism.representation: marouf saves Marouf's PCA, fitted on the test cells (their projection is centred);
    the default fits on the training cells minus the control's."""
    reps = {}
    for kind in ("scsynth", "marouf"):
        path = reference["root"] / f"{kind}.npz"
        realism.build_realism_representation(prepared=reference["prepared"], split=reference["split"],
                                             representation=path, kind=kind)  # fmt: skip
        reps[kind] = SharedRepresentation.load(path)
        assert reps[kind].kind == kind
    fit, _, test = protocol_cells(steps.load_prepared(reference["prepared"], reference["split"]), seed=0)
    np.testing.assert_allclose(reps["marouf"].transform(test).mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(reps["scsynth"].transform(fit).mean(axis=0), 0, atol=1e-3)
    with pytest.raises(ConfigError, match="realism.representation"):
        realism.build_realism_representation(prepared=reference["prepared"], split=reference["split"],
                                             representation=reference["root"] / "x.npz", kind="pca")  # fmt: skip


def test_each_papers_heatmap_has_its_genes_and_scale(reference):
    """activa: the top 5 DE genes of every cluster, LSN values (Heydari Fig. 4); marouf: the top 5 of the two
    largest types (Dendritic, CD14+ Monocyte), log(LSN + 1) values (Marouf Fig. 1d); both drawn by one job."""
    root = reference["root"] / "control"
    root.mkdir()
    realism.build_realism_representation(prepared=reference["prepared"], split=reference["split"],
                                         representation=root / "rep.npz")  # fmt: skip
    heatmaps = {"activa": root / "marker_correlation.tsv", "marouf": root / "marker_correlation_marouf.tsv"}
    realism.evaluate_real_control(real=reference["prepared"], split=reference["split"], output=root / "m.json",
                                  representation=root / "rep.npz", markers=reference["markers"],
                                  roc=root / "roc.tsv", heatmaps=heatmaps, n_trees=5)  # fmt: skip
    table = pd.read_csv(reference["markers"], sep="\t")
    frames = {name: pd.read_csv(path, sep="\t", index_col=0) for name, path in heatmaps.items()}
    assert list(frames["activa"].index) == list(dict.fromkeys(table["gene"]))
    largest = table[table["cluster"].isin(["Dendritic", "CD14+ Monocyte"])]
    largest = largest.sort_values("n_cells", ascending=False, kind="stable")  # ranks stay in order per cluster
    assert list(frames["marouf"].index) == list(dict.fromkeys(largest["gene"])) and len(frames["marouf"]) == 10
    _, control, test = protocol_cells(steps.load_prepared(reference["prepared"], reference["split"]), seed=0)
    genes = list(frames["marouf"].index)
    expected = marker_correlation_frame(test, control, genes, space="log1p_lsn")
    np.testing.assert_allclose(frames["marouf"].to_numpy(), expected.to_numpy(), atol=1e-9)
    lsn = marker_correlation_frame(test, control, genes, space="lsn").to_numpy()
    assert np.abs(lsn - expected.to_numpy()).max() > 0.05  # the scale matters for these genes


def test_one_job_draws_every_heatmap_of_a_run(tmp_path):
    genes = ["g1", "g2", "NA"]  # "NA" is a gene name, not a missing value
    frame = pd.DataFrame(np.eye(3) * 0.5 + 0.5, index=genes, columns=genes)
    heatmaps = {name: tmp_path / f"{name}.tsv" for name in ("activa", "marouf")}
    for path in heatmaps.values():
        frame.to_csv(path, sep="\t")
    figures = {name: tmp_path / f"{name}.png" for name in heatmaps}
    realism.plot_correlation_heatmap(heatmaps=heatmaps, outputs=figures, title="control")
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in figures.values())


def test_marker_lists_without_clusters_still_give_heydaris_set(reference, tmp_path):
    """A markers.tsv of an older run (a gene column only) is the every-cluster set; Marouf's heatmap needs the
    clusters' sizes and says to rebuild the file."""
    old = tmp_path / "markers.tsv"
    pd.DataFrame({"gene": ["CD79A", "NKG7", "LYZ"]}).to_csv(old, sep="\t", index=False)
    assert realism._read_markers(old) == ["CD79A", "NKG7", "LYZ"]
    assert realism._heatmap_genes(old, ["activa"]) == {"activa": ["CD79A", "NKG7", "LYZ"]}
    with pytest.raises(DataError, match="delete it"):
        realism._heatmap_genes(old, ["marouf"])
    with pytest.raises(ConfigError, match="unknown heatmap"):
        realism._heatmap_genes(reference["markers"], ["scanpy"])


def test_embedding_marker_by_name_per_dataset_and_missing_genes(reference):
    datasets = ["pbmc68k", "brain_small"]
    assert realism.dataset_embedding_marker("NKG7", "pbmc68k", datasets) == "NKG7"
    spec = {"brain_small": "Hmgb2"}
    assert realism.dataset_embedding_marker(spec, "brain_small", datasets) == "Hmgb2"
    assert realism.dataset_embedding_marker(spec, "pbmc68k", datasets) == "auto"  # left out: auto
    with pytest.raises(ConfigError, match=r"\['zeisel'\].*does not list"):
        realism.dataset_embedding_marker({"zeisel": "Snap25"}, "pbmc68k", datasets)
    genes = steps.load_prepared(reference["prepared"]).var_names
    first = pd.read_csv(reference["markers"], sep="\t")["gene"].iloc[0]
    assert realism._embedding_marker("auto", reference["markers"], genes, dataset="demo") == first
    assert realism._embedding_marker("CD79A", reference["markers"], genes, dataset="demo") == "CD79A"
    # a gene the prepared data lacks: an error naming the gene and the dataset, before any embedding
    with pytest.raises(DataError, match=r"gene 'Hmgb2' is not among the 765 genes of dataset 'pbmc68k_demo'"):
        realism.plot_realism_embeddings(real=reference["prepared"], split=reference["split"], generated={},
                                        markers=reference["markers"], outputs={"tsne_marker": "unused.png"},
                                        marker="Hmgb2", dataset="pbmc68k_demo")  # fmt: skip
