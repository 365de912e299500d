from scsynth_core.steps import evaluate_realism, run_logged

run_logged(
    snakemake.log[0],
    evaluate_realism,
    real=snakemake.input.prepared,
    split=snakemake.input.split,
    generated=snakemake.input.generated,
    train_log=snakemake.input.train_log,
    output=snakemake.output[0],
)
