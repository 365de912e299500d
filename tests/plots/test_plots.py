"""Figure functions: each returns a Figure with the expected artists, built from a small known frame."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch, Rectangle

from scsynth_core.embedding import embedding_frame
from scsynth_core.plots import _style
from scsynth_core.plots.augmentation import percent_label, plot_f1_vs_fraction
from scsynth_core.plots.bars import plot_leaderboard, plot_metric_bars
from scsynth_core.plots.embedding import plot_embedding
from scsynth_core.plots.heatmap import correlation_triangles, plot_correlation_heatmap
from scsynth_core.plots.pilot import plot_mad_table, plot_metric_boxplots
from scsynth_core.plots.roc import mean_roc, plot_roc, plot_roc_comparison


@pytest.fixture(autouse=True)
def _no_pyplot_state():
    """Figures are built without pyplot: nothing may be left open; close anything anyway."""
    yield
    leaked = plt.get_fignums()
    plt.close("all")
    assert not leaked, "a plot function registered a pyplot figure"


def saves_png(fig: Figure, tmp_path, name: str = "fig.png") -> bool:
    path = tmp_path / name
    fig.savefig(path)
    return path.stat().st_size > 5_000


def roc_folds(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(seed)
    folds = []
    for _ in range(n):
        y = np.r_[np.zeros(40), np.ones(40)]
        score = y * 0.6 + rng.normal(size=80)
        fpr, tpr, _ = roc_curve(y, score)
        folds.append((fpr, tpr))
    return folds


# ---------------------------------------------------------------- style


def test_colors_fixed_unique_and_deterministic():
    colors = _style.colors_for(["activa", "scgan", "mystery", "other"])
    assert colors["activa"] == _style.FIXED_COLORS["activa"]
    assert colors["scgan"] == _style.FIXED_COLORS["scgan"]
    assert len(set(colors.values())) == 4
    assert colors == _style.colors_for(["activa", "scgan", "mystery", "other"])
    # two names sharing a fixed colour still get distinct colours in one figure
    shared = _style.colors_for(["upsample", "noise"])
    assert shared["upsample"] != shared["noise"]
    assert len(_style.categorical_colors(30)) == 30


def test_new_figure_with_given_ax_uses_its_figure():
    fig = Figure()
    ax = fig.add_subplot()
    got, axes = _style.new_figure(ax=ax)
    assert got is fig and axes[0, 0] is ax
    with pytest.raises(ValueError):
        _style.new_figure(1, 2, ax=ax)


# ---------------------------------------------------------------- ROC


def test_mean_roc_known_answer():
    _, tpr = mean_roc(
        [(np.array([0.0, 1.0]), np.array([0.0, 1.0])), (np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0]))],
        grid=np.array([0.0, 0.5, 1.0]),
    )
    np.testing.assert_allclose(tpr, [0.0, 0.75, 1.0])


def test_plot_roc(tmp_path):
    folds = roc_folds(5)
    fig = plot_roc(folds, auc_mean=0.6712, auc_sd=0.0213, title="scGAN")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 5 + 2  # folds + mean + diagonal
    widths = sorted(line.get_linewidth() for line in ax.lines)
    assert widths[-1] > 2 * widths[0]  # mean drawn thick
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("AUC = 0.671 ± 0.021" in t for t in texts)
    assert ax.get_title() == "scGAN"
    assert saves_png(fig, tmp_path)


def test_plot_roc_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_roc(roc_folds(3), auc_mean=0.5, auc_sd=0.01, ax=ax) is fig
    assert len(ax.lines) == 3 + 2


def test_plot_roc_comparison(tmp_path):
    curves = {"scgan": roc_folds(3, 1), "activa": roc_folds(3, 2)}
    aucs = {"scgan": (0.71, 0.02), "activa": (0.62, 0.03)}
    fig = plot_roc_comparison(curves, aucs)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 * 3 + 2 + 1
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "scgan (AUC = 0.710 ± 0.020)" in texts and "activa (AUC = 0.620 ± 0.030)" in texts
    assert len(plot_roc_comparison(curves, aucs, show_folds=False).axes[0].lines) == 3
    with pytest.raises(ValueError, match="activa"):
        plot_roc_comparison(curves, {"scgan": (0.7, 0.1)})
    assert saves_png(fig, tmp_path)


# ---------------------------------------------------------------- embedding


@pytest.fixture
def embedding_sets(tiny_counts):
    rng = np.random.default_rng(1)
    gen = ad.AnnData(sp.csr_matrix(rng.poisson(np.asarray(tiny_counts.X.todense()) + 0.5).astype(np.float32)))
    gen.var_names = tiny_counts.var_names
    gen.obs["cluster"] = tiny_counts.obs["cluster"].to_numpy()
    holistic = gen.copy()
    del holistic.obs["cluster"]
    return tiny_counts, {"cscgan": gen, "scgan": holistic}


def test_embedding_frame_tsne_with_clusters_and_genes(embedding_sets):
    real, gen = embedding_sets
    frame = embedding_frame(real, gen, method="tsne", genes=["g0", "g7"], seed=0)
    assert list(frame.columns) == ["x", "y", "set", "cluster", "g0", "g7"]
    assert frame.attrs["method"] == "tsne"
    assert frame["set"].value_counts().to_dict() == {"real": 60, "cscgan": 60, "scgan": 60}
    assert set(frame.loc[frame["set"] == "scgan", "cluster"]) == {"unlabelled"}
    assert set(frame.loc[frame["set"] == "real", "cluster"]) == {"a", "b"}
    X = real.X.toarray()
    expected = np.log1p(X[:, 0] / X.sum(1) * 20_000)
    np.testing.assert_allclose(frame.loc[frame["set"] == "real", "g0"], expected, rtol=1e-6)
    again = embedding_frame(real, gen, method="tsne", genes=["g0", "g7"], seed=0)
    pd.testing.assert_frame_equal(frame, again)  # deterministic
    with pytest.raises(ValueError, match="method"):
        embedding_frame(real, gen, method="pca")
    with pytest.raises(ValueError, match="nope"):
        embedding_frame(real, gen, genes=["nope"])


def synthetic_embedding_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    sets = np.repeat(["real", "cscgan", "scgan"], 40)
    frame = pd.DataFrame({"x": rng.normal(size=120), "y": rng.normal(size=120), "set": sets})
    frame["cluster"] = np.where(np.arange(120) % 2 == 0, "T cells", "B cells")
    frame.loc[frame["set"] == "scgan", "cluster"] = "unlabelled"
    frame["CD3E"] = rng.gamma(1.0, size=120)
    frame.attrs["method"] = "tsne"
    return frame


def test_plot_embedding_by_set_keeps_old_behaviour(tmp_path):
    frame = synthetic_embedding_frame()
    fig = plot_embedding(frame, title="co-embedding")
    assert len(fig.axes) == 2  # one panel per generated set
    assert [ax.get_title() for ax in fig.axes] == ["cscgan", "scgan"]
    assert all(len(ax.collections) == 2 for ax in fig.axes)  # real grey + the set
    assert fig.axes[0].get_xlabel() == "t-SNE 1"
    assert saves_png(fig, tmp_path)


def test_plot_embedding_by_cluster():
    fig = plot_embedding(synthetic_embedding_frame(), color_by="cluster", method="umap")
    assert [ax.get_title() for ax in fig.axes] == ["real", "cscgan", "scgan"]
    assert [len(ax.collections) for ax in fig.axes] == [2, 2, 1]
    assert fig.axes[0].get_xlabel() == "UMAP 1"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["B cells", "T cells", "unlabelled"]


def test_plot_embedding_by_gene_uses_continuous_colormap(tmp_path):
    frame = synthetic_embedding_frame()
    fig = plot_embedding(frame, color_by="CD3E")
    panels = fig.axes[:3]
    assert len(fig.axes) == 4  # three sets + colour bar
    for ax in panels:
        (points,) = ax.collections
        assert isinstance(points, PathCollection)
        assert points.get_array() is not None and points.get_cmap().name == "viridis"
        assert points.norm.vmin == pytest.approx(frame["CD3E"].min())
        assert points.norm.vmax == pytest.approx(frame["CD3E"].max())
    real_values = np.sort(frame.loc[frame["set"] == "real", "CD3E"].to_numpy())
    np.testing.assert_allclose(panels[0].collections[0].get_array(), real_values)  # highest drawn last
    assert "CD3E" in fig.axes[3].get_ylabel()
    with pytest.raises(ValueError, match="color_by"):
        plot_embedding(frame, color_by="MS4A1")
    assert saves_png(fig, tmp_path)


# ---------------------------------------------------------------- heatmap


def test_correlation_heatmap(tmp_path):
    genes = [f"gene{i}" for i in range(6)]
    rng = np.random.default_rng(0)
    real = pd.DataFrame(np.corrcoef(rng.normal(size=(6, 30))), index=genes, columns=genes)
    gen = pd.DataFrame(np.corrcoef(rng.normal(size=(6, 30))), index=genes, columns=genes)
    frame = correlation_triangles(real, gen)
    assert frame.iloc[3, 1] == gen.iloc[3, 1] and frame.iloc[1, 3] == real.iloc[1, 3]
    fig = plot_correlation_heatmap(frame, title="marker genes")
    ax = fig.axes[0]
    (image,) = ax.images
    np.testing.assert_array_equal(np.asarray(image.get_array()), frame.to_numpy())
    assert image.get_clim() == (-1.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == genes
    assert [t.get_text() for t in ax.get_yticklabels()] == genes
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["generated (lower)", "real (upper)"]
    assert len(fig.axes) == 2  # heatmap + colour bar
    assert saves_png(fig, tmp_path)
    with pytest.raises(ValueError):
        plot_correlation_heatmap(frame.iloc[:, :5])


# ---------------------------------------------------------------- augmentation


def f1_frame(with_comparison: bool = False) -> pd.DataFrame:
    rows = []
    for comparison in ["cscgan", "activa"] if with_comparison else [None]:
        for fraction in [0.5, 0.1, 0.05, 0.005]:
            for k, variant in enumerate(["downsampled", "upsampled", "augmented"]):
                for seed in range(3):
                    f1 = 0.9 - 0.1 * k * (1 - fraction) - 0.3 * (1 - fraction) + 0.01 * seed
                    rows.append({"comparison": comparison, "fraction": fraction, "variant": variant, "seed": seed,
                                 "f1": f1})  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame if with_comparison else frame.drop(columns="comparison")


def test_percent_label():
    assert [percent_label(f) for f in (0.5, 0.1, 0.005, 0.0025)] == ["50%", "10%", "0.5%", "0.25%"]


def test_plot_f1_vs_fraction(tmp_path):
    frame = f1_frame()
    fig = plot_f1_vs_fraction(frame, reference=0.95)
    (ax,) = fig.axes
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3  # one shaded min-max band per variant
    mean_lines = [line for line in ax.lines if line.get_label() in {"downsampled", "upsampled", "augmented"}]
    assert len(mean_lines) == 3
    down = next(line for line in mean_lines if line.get_label() == "downsampled")
    expected = frame[frame["variant"] == "downsampled"].groupby("fraction")["f1"].mean().sort_index(ascending=False)
    np.testing.assert_allclose(down.get_ydata(), expected.to_numpy())
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo > hi  # fractions descend left to right
    assert [t.get_text() for t in ax.get_xticklabels()] == ["50%", "10%", "5%", "0.5%"]
    assert saves_png(fig, tmp_path)


def test_plot_f1_vs_fraction_facets():
    fig = plot_f1_vs_fraction(f1_frame(with_comparison=True), title="augmentation")
    assert [ax.get_title() for ax in fig.axes] == ["cscgan", "activa"]
    assert all(sum(isinstance(c, PolyCollection) for c in ax.collections) == 3 for ax in fig.axes)
    with pytest.raises(ValueError, match="comparison"):
        plot_f1_vs_fraction(f1_frame(with_comparison=True), ax=Figure().add_subplot())


# ---------------------------------------------------------------- pilot


def pilot_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"pilot_size": size, "model": model, "seed": seed, "dbi": 2.0 + k - size / 1000 + rng.normal(0, 0.1)}
        for size in [384, 768, 1536]
        for k, model in enumerate(["scdbm", "scvi_prior", "scvi_posterior"])
        for seed in range(5)
    ]
    return pd.DataFrame(rows).drop(index=[44])  # the last (1536, scvi_posterior) seed is missing: still one box


def test_plot_metric_boxplots(tmp_path):
    frame = pilot_frame()
    fig = plot_metric_boxplots(frame, metric="dbi", reference=1.2)
    (ax,) = fig.axes
    boxes = [p for p in ax.patches if isinstance(p, PathPatch)]
    assert len(boxes) == 3 * 3  # one per (pilot size, model)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["384", "768", "1536"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["scdbm", "scvi_prior", "scvi_posterior", "original data"]
    assert any(np.allclose(line.get_ydata(), 1.2) for line in ax.lines)
    assert ax.get_ylabel() == "Davies-Bouldin index"
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == len(frame)
    assert saves_png(fig, tmp_path)
    partial = plot_metric_boxplots(frame[~((frame["pilot_size"] == 384) & (frame["model"] == "scdbm"))], metric="dbi")
    assert sum(isinstance(p, PathPatch) for p in partial.axes[0].patches) == 8


def mad_frame(with_pilot: bool) -> pd.DataFrame:
    rows = []
    for size in [384, 1536] if with_pilot else [None]:
        for k, model in enumerate(["scdbm", "scvi", "noise"]):
            for j, stat in enumerate(["zeros", "median", "iqr", "cv"]):  # unordered on purpose
                for seed in range(2):
                    mad = 0.1 * (k + 1) + 0.013 * j + 0.002 * seed + (0.05 if size == 384 else 0)
                    rows.append({"pilot_size": size, "model": model, "statistic": stat, "seed": seed, "mad": mad})
    frame = pd.DataFrame(rows)
    return frame if with_pilot else frame.drop(columns="pilot_size")


def test_plot_mad_table(tmp_path):
    frame = mad_frame(with_pilot=False)
    fig = plot_mad_table(frame)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["median", "IQR", "CV", "zero fraction"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["scdbm", "scvi", "noise"]
    expected = frame.groupby(["model", "statistic"], sort=False)["mad"].mean().unstack()
    expected = expected.loc[["scdbm", "scvi", "noise"], ["median", "iqr", "cv", "zeros"]]
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in expected.to_numpy().ravel()]
    (image,) = ax.images
    shade = np.asarray(image.get_array())
    np.testing.assert_allclose(shade, np.repeat([[0.0], [0.5], [1.0]], 4, axis=1))  # rank within each column
    assert saves_png(fig, tmp_path)


def test_plot_mad_table_with_pilot_sizes_and_wide_input():
    fig = plot_mad_table(mad_frame(with_pilot=True))
    ax = fig.axes[0]
    assert len(ax.texts) == 6 * 4
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["scdbm (384 cells)", "scvi (384 cells)"]
    # ranks restart per pilot size: the best model of each size is darkest
    shade = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shade[:, 0], [0, 0.5, 1, 0, 0.5, 1])
    wide = pd.DataFrame({"median": [0.123, 0.456], "cv": [0.9, 0.1]}, index=["a", "b"])
    ax2 = plot_mad_table(wide).axes[0]
    assert [t.get_text() for t in ax2.texts] == ["0.12", "0.90", "0.46", "0.10"]


# ---------------------------------------------------------------- disentanglement / leaderboard


def test_plot_metric_bars(tmp_path):
    rows = [
        {"model": model, "latent_dim": dim, "replicate": r, "mig": 0.1 * k + 0.01 * dim + 0.005 * r}
        for k, model in enumerate(["vae", "beta_tcvae", "michigan"])
        for dim in [5, 10, 20]
        for r in range(2)
    ]
    frame = pd.DataFrame(rows)
    fig = plot_metric_bars(frame, metric="mig")
    (ax,) = fig.axes
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 3 * 3
    heights = sorted(round(b.get_height(), 6) for b in bars)
    expected = sorted(frame.groupby(["model", "latent_dim"])["mig"].mean().round(6))
    np.testing.assert_allclose(heights, expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "10", "20"]
    assert ax.get_xlabel() == "latent dimensions" and ax.get_ylabel() == "MIG"
    assert saves_png(fig, tmp_path)
    by_factor = frame.rename(columns={"latent_dim": "factor"})
    by_factor["factor"] = by_factor["factor"].map({5: "batch", 10: "path", 20: "step"})
    ax = plot_metric_bars(by_factor[by_factor["model"] != "vae"], metric="mig").axes[0]
    assert sum(isinstance(p, Rectangle) for p in ax.patches) == 2 * 3
    assert ax.get_xlabel() == "factor"


def test_plot_leaderboard(tmp_path):
    frame = pd.DataFrame(
        {
            "model": ["scgan"] * 3 + ["activa"] * 3 + ["noise"] * 3,
            "replicate": [0, 1, 2] * 3,
            "rf_auc_mean": [0.70, 0.72, 0.71, 0.60, 0.62, 0.61, 0.99, 0.98, 0.99],
            "mmd": [0.1, 0.12, 0.11, 0.05, 0.06, 0.05, 0.9, 0.8, 0.85],
            "correlation_discrepancy": [1.0, 1.1, 0.9, 0.7, 0.8, 0.75, np.nan, np.nan, np.nan],
        }
    )
    metrics = ["rf_auc_mean", "mmd", "correlation_discrepancy"]
    fig = plot_leaderboard(frame, metrics=metrics, title="realism")
    assert len(fig.axes) == 3
    bars = [[p for p in ax.patches if isinstance(p, Rectangle)] for ax in fig.axes]
    assert [len(b) for b in bars] == [3, 3, 2]  # noise has no correlation discrepancy
    np.testing.assert_allclose([b.get_height() for b in bars[1]], [0.11, 0.16 / 3, 0.85])
    assert [sum(len(c.get_offsets()) for c in ax.collections) for ax in fig.axes] == [9, 9, 6]
    assert any(np.allclose(line.get_ydata(), 0.5) for line in fig.axes[0].lines)  # chance AUC
    assert fig.axes[0].get_title() == "RF AUC (real vs generated)"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["scgan", "activa", "noise"]
    assert saves_png(fig, tmp_path)
    grid = plot_leaderboard(frame, metrics=metrics, ncols=2)
    assert len(grid.axes) == 3  # the unused fourth panel is removed
    with pytest.raises(ValueError, match="ari"):
        plot_leaderboard(frame, metrics=["ari"])


def test_figures_are_deterministic(tmp_path):
    a = plot_metric_boxplots(pilot_frame(), metric="dbi", reference=1.0)
    b = plot_metric_boxplots(pilot_frame(), metric="dbi", reference=1.0)
    a.savefig(tmp_path / "a.png", metadata={"Software": None})
    b.savefig(tmp_path / "b.png", metadata={"Software": None})
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_training_curves_frame_keeps_monitored_rows_and_draws_a_line_per_run():
    from scsynth_core.plots.training import plot_training_curves, training_curves_frame

    gan = pd.DataFrame(
        {
            "step": [50, 100, 150],
            "time_s": [30.0, 60.0, 90.0],
            "monitor_auc": [None, 0.9, 0.7],
            "monitor_mmd": [None, 0.3, 0.1],
        }
    )
    baseline = pd.DataFrame({"step": [1], "time_s": [0.1]})  # no monitor: left out
    frame = training_curves_frame({"scgan": gan, "upsample": baseline})
    assert list(frame["run"]) == ["scgan", "scgan"] and list(frame["minutes"]) == [1.0, 1.5]
    assert list(frame["monitor_auc"]) == [0.9, 0.7]
    fig = plot_training_curves(frame, title="t")
    auc_axes = fig.axes[0]
    assert auc_axes.lines[0].get_label() == "scgan"
    np.testing.assert_allclose(auc_axes.lines[0].get_ydata(), [0.9, 0.7])
    empty = plot_training_curves(training_curves_frame({"upsample": baseline}))
    assert any("no monitored run" in t.get_text() for t in empty.axes[0].texts)
