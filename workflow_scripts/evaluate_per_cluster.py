from scsynth_core.experiments.realism import evaluate_per_cluster_realism
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    evaluate_per_cluster_realism,
    real=snakemake.input.prepared,
    split=snakemake.input.split,
    generated=snakemake.input.get("generated"),  # none: the real control
    representation=snakemake.input.representation,
    output=snakemake.output.table,
    roc=snakemake.output.roc,
    min_cells=snakemake.params.min_cells,
    n_trees=snakemake.params.n_trees,
    seed=int(snakemake.wildcards.seed),
    threads=snakemake.threads,
)
