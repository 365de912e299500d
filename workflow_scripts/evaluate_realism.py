from scsynth_core.experiments.realism import evaluate_realism
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    evaluate_realism,
    real=snakemake.input.prepared,
    split=snakemake.input.split,
    generated=snakemake.input.generated,
    train_benchmark=snakemake.input.train_benchmark,
    representation=snakemake.input.representation,
    markers=snakemake.input.markers,
    output=snakemake.output.metrics,
    roc=snakemake.output.roc,
    # one file per heatmap of realism.heatmaps (outputs heatmap_<name>)
    heatmaps={key.removeprefix("heatmap_"): path for key, path in snakemake.output.items() if key.startswith("heatmap_")},
    n_trees=snakemake.params.n_trees,
    seed=int(snakemake.wildcards.seed),
    threads=snakemake.threads,
    # today's metrics only where realism.metrics asks for them (the rule then has this parameter and output)
    metrics=snakemake.params.get("metrics", ["papers"]),
    modern=snakemake.output.get("modern"),
)
