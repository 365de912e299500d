"""The F1 figure's panels for pairwise comparisons (Marouf 2020 Fig. 3a and Supplementary Fig. 14): one panel per
comparison and forest, each drawing only its own rows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from scsynth_core.plots.augmentation import comparison_panels, plot_f1_vs_fraction

# F1 per (comparison, forest): distinct levels so that a panel drawing another panel's rows shows at once
LEVEL = {("rest", "all"): 0.5, ("0", "all"): 0.6, ("0", "pair"): 0.9, ("4", "all"): 0.7, ("4", "pair"): 0.8}


def protocol_frame() -> pd.DataFrame:
    """Rows as the augmentation protocol writes them: rest and shared-forest rows first, pair rows after."""
    rows = [
        {"fraction": fraction, "variant": variant, "seed": seed, "comparison": comparison, "forest": forest,
         "f1": level - 0.1 * k * fraction + 0.01 * seed}
        for fraction in (0.5, 0.05)
        for k, variant in enumerate(("downsampled", "upsampled", "augmented"))
        for seed in (0, 1)
        for (comparison, forest), level in LEVEL.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_comparison_panels_order_and_labels():
    out = comparison_panels(protocol_frame().iloc[::-1])
    assert list(pd.unique(out["comparison"])) == [
        "vs rest", "vs 0 (all-cluster forest)", "vs 0 (two-cluster forest)", "vs 4 (all-cluster forest)",
        "vs 4 (two-cluster forest)",
    ]  # fmt: skip
    assert len(out) == len(protocol_frame())
    with pytest.raises(ValueError, match="forest must be one of"):
        comparison_panels(protocol_frame().assign(forest="binary"))


def test_f1_figure_has_one_panel_per_comparison_and_forest():
    frame = protocol_frame()
    fig = plot_f1_vs_fraction(frame, title="F1")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == list(pd.unique(comparison_panels(frame)["comparison"]))
    pair = fig.axes[titles.index("vs 0 (two-cluster forest)")]
    line = next(line for line in pair.lines if line.get_label() == "downsampled")
    rows = frame[(frame["comparison"] == "0") & (frame["forest"] == "pair") & (frame["variant"] == "downsampled")]
    expected = rows.groupby("fraction")["f1"].mean().sort_index(ascending=False).to_numpy()
    np.testing.assert_allclose(line.get_ydata(), expected)
