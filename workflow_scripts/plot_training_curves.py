from scsynth_core.experiments.realism import plot_training_curves
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    plot_training_curves,
    train_logs=dict(zip(snakemake.params.runs, snakemake.input)),
    output=snakemake.output[0],
    title=f"{snakemake.wildcards.dataset}: realism during training",
)
