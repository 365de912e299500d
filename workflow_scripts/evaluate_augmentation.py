from scsynth_core.experiments.augmentation import evaluate_augmentation
from scsynth_core.steps import run_logged

section = snakemake.params.section
run_logged(
    snakemake.log[0],
    evaluate_augmentation,
    prepared=snakemake.input.prepared,
    split=snakemake.input.split,
    generated=dict(zip(snakemake.params.models, snakemake.input.generated)),
    output=snakemake.output[0],
    fraction=float(snakemake.wildcards.fraction),
    seed=int(snakemake.wildcards.seed),
    target=section["target"],
    n_extra=section["n_generated"],
    sweep=section["n_generated_sweep"],
    compare_with=section["compare_with"],
    n_trees=section["rf_trees"],
    threads=snakemake.threads,
)
