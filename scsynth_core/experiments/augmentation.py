"""The augmentation experiment (Marouf 2020 Fig. 3; Heydari 2022 Fig. 6): a cluster's training cells downsampled,
then a classifier of that cluster trained on the downsampled, upsampled and generator-augmented cells. Rules in
``rules/augmentation.smk``; config section ``augmentation``; results under ``results/augmentation/``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from scsynth_core import atomic
from scsynth_core.errors import ConfigError
from scsynth_core.runtime import save_figure, use_agg
from scsynth_core.steps import by_name, load_prepared, read_generated

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("scsynth")


#: What a kept fraction is a fraction of (config ``augmentation.fraction_of``).
FRACTION_OF = ("training", "cluster")


# -- augmentation (Marouf 2020 Fig. 3; Heydari 2022 Fig. 6) ------------------------------------------------------
def whole_cluster_levels(fractions: Sequence[float], *, n_cluster: int, n_train: int) -> dict[float, float]:
    """Levels of the target's training cells that keep ``max(1, floor(f * n_cluster))`` of them for each fraction
    ``f`` of the whole cluster (Marouf 2020 Fig. 3: "downsampled to 50 % .. 0.5 %" of cluster 2's cells).

    The nested downsampling keeps ``max(1, floor(level * n_train))`` training cells per level
    (:func:`scsynth_core.data.split.nested_downsample`), so a count ``k`` is asked for as the level
    ``(k + 1/2) / n_train``, whose product with ``n_train`` is ``k + 1/2`` and floors to ``k`` (1 when
    ``k = n_train``). Larger fractions keep more cells, so the levels stay nested.
    """
    levels = {}
    for f in fractions:
        k = max(1, math.floor(Fraction(str(f)) * n_cluster))
        if k > n_train:
            raise ConfigError(
                f"augmentation.fractions: {f:g} of the target's {n_cluster} cells is {k} cells, more than its "
                f"{n_train} training cells (with fraction_of: cluster every fraction must be at most "
                f"{n_train / n_cluster:.3g}, the training share)"
            )
        levels[f] = 1.0 if k == n_train else float(Fraction(2 * k + 1, 2 * n_train))
    return levels


def downsample_dataset(
    *,
    prepared: str | Path,
    split: str | Path,
    outputs: Mapping[float, str | Path] | Sequence[str | Path],
    fractions: Sequence[float] | None = None,
    target: str = "auto",
    seed: int = 0,
    fraction_of: str = "training",
) -> None:
    """Write one split file per kept fraction of the target cluster (nested levels), of its training cells
    (``fraction_of="training"``) or of all its cells (``"cluster"``, Marouf 2020), drawn from its training cells.
    ``outputs``: fraction -> file, or a list of files in the order of ``fractions``."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.split import downsampled_splits, read_split, resolve_target_cluster, write_split

    if fraction_of not in FRACTION_OF:
        raise ConfigError(f"augmentation.fraction_of must be one of {', '.join(FRACTION_OF)}, got {fraction_of!r}")
    outputs = by_name(outputs, fractions, what="downsampled splits")
    labels = read_h5ad(prepared, backed=True).obs["cluster"].astype(str)
    cluster = resolve_target_cluster(labels, target)
    assignment = read_split(split)
    levels = {f: f for f in outputs}
    if fraction_of == "cluster":
        in_cluster = labels.reindex(assignment.index) == cluster
        levels = whole_cluster_levels(list(outputs), n_cluster=int(in_cluster.sum()),
                                      n_train=int((in_cluster & (assignment == "train")).sum()))  # fmt: skip
    splits = downsampled_splits(assignment, labels, cluster=cluster, levels=list(levels.values()), seed=seed)
    for fraction, level in levels.items():
        write_split(outputs[fraction], splits[level])
    log.info("downsampled cluster %s to %s of its %s cells", cluster, ", ".join(f"{k:g}" for k in outputs),
             fraction_of)  # fmt: skip


def evaluate_augmentation(
    *,
    prepared: str | Path,
    split: str | Path,
    generated: Mapping[str, str | Path] | Sequence[str | Path],
    output: str | Path,
    fraction: float,
    seed: int,
    models: Sequence[str] | None = None,
    target: str = "auto",
    n_extra: int = 5000,
    sweep: Sequence[int] = (),
    compare_with: Sequence[str] = (),
    n_trees: int = 1000,
    threads: int = 1,
) -> None:
    """F1 of the target cluster for the downsampled, upsampled and augmented classifiers (Marouf 2020 Fig. 3).

    The PCA (50 components, log(LSN + 1)) is fitted on the downsampled training cells only; test cells and
    generated cells are projected. Rows: ``variant``, ``source`` (real or the model), ``comparison`` (rest or a
    named cluster), ``forest`` (``all``, or ``pair`` for a forest retrained on the target and the named cluster,
    Marouf 2020 Supplementary Fig. 14), ``f1``, ``n_extra``, plus ``fraction`` and ``seed``. ``sweep`` adds
    augmented rows for other numbers of generated cells (Marouf: 100 to 12,000; all-cluster forests only).
    ``generated``: model -> file, or a list of files in the order of ``models``.
    """
    import pandas as pd

    from scsynth_core.data.split import resolve_target_cluster
    from scsynth_core.metrics.augmentation import augmentation_f1, augmentation_protocol
    from scsynth_core.metrics.representation import fit_representation

    cells = load_prepared(prepared, split)
    cluster = resolve_target_cluster(cells.obs["cluster"], target)
    train = cells[cells.obs["split"] == "train"].copy()
    test = cells[cells.obs["split"] == "test"].copy()
    rep = fit_representation(train, seed=seed)
    train_pcs, test_pcs = rep.transform(train), rep.transform(test)
    train_y, test_y = train.obs["cluster"].astype(str).to_numpy(), test.obs["cluster"].astype(str).to_numpy()
    generated = by_name(generated, models, what="generated cells")
    gen_pcs = {name: rep.transform(read_generated(path)) for name, path in generated.items()}
    common = {
        "target": cluster,
        "n_trees": n_trees,
        "seed": seed,
        "n_jobs": threads,
        "compare_with": list(compare_with),
    }
    frame = augmentation_protocol(
        train_pcs, train_y, test_pcs, test_y, generated_pcs=gen_pcs, n_extra=n_extra, **common
    )
    rows = [frame]
    for n in sorted(set(sweep) - {n_extra}):
        for name, pcs in gen_pcs.items():
            extra = pcs[: min(n, len(pcs))]
            scores = augmentation_f1(train_pcs, train_y, test_pcs, test_y, extra_pcs=extra, **common)
            rows.append(
                pd.DataFrame(
                    {"variant": "augmented", "source": name, "comparison": list(scores), "forest": "all",
                     "f1": list(scores.values()), "n_extra": len(extra),
                     "n_target_train": int((train_y == cluster).sum())}
                )
            )  # fmt: skip
    result = pd.concat(rows, ignore_index=True).assign(fraction=fraction, seed=seed, target=cluster)
    atomic.write_tsv(output, result)


def plot_augmentation_f1(*, table: str | Path, output: str | Path, n_extra: int, title: str = "") -> None:
    """F1 of the target cluster against the kept fraction, per variant, seed range shaded (Marouf 2020 Fig. 3a)."""
    use_agg()
    import pandas as pd

    from scsynth_core.plots.augmentation import plot_f1_vs_fraction

    frame = pd.read_csv(table, sep="\t")
    frame = frame[(frame["variant"] != "augmented") | (frame["n_extra"] == n_extra)]  # the sweep has its own rows
    models = frame.loc[frame["variant"] == "augmented", "source"].nunique()
    if models > 1:  # one curve per generator
        augmented = frame["variant"] == "augmented"
        frame.loc[augmented, "variant"] = "augmented (" + frame.loc[augmented, "source"] + ")"
    save_figure(plot_f1_vs_fraction(frame, title=title), output)


def plot_augmentation_embedding(
    *,
    prepared: str | Path,
    split: str | Path,
    generated: str | Path,
    output: str | Path,
    target: str = "auto",
    seed: int = 0,
    title: str = "",
) -> None:
    """t-SNE of generated target cells with the real target test cells no generator saw (Marouf 2020 Fig. 3)."""
    use_agg()
    from scsynth_core.data.split import resolve_target_cluster
    from scsynth_core.embedding import embedding_frame
    from scsynth_core.plots.embedding import plot_embedding

    cells = load_prepared(prepared, split)
    cluster = resolve_target_cluster(cells.obs["cluster"], target)
    real = cells[(cells.obs["split"] == "test") & (cells.obs["cluster"].astype(str) == cluster)].copy()
    fake = read_generated(generated)
    fake = fake[: min(fake.n_obs, max(real.n_obs, 500))].copy()
    frame = embedding_frame(real, {"generated": fake}, seed=seed, method="tsne", cluster_key=None)
    save_figure(plot_embedding(frame, title=title), output)
