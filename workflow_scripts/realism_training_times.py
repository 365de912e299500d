from scsynth_core.experiments.realism import training_times
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    training_times,
    train_logs=snakemake.input.train_logs,
    output=snakemake.output[0],
    device=snakemake.params.device,
)
