from scsynth_core.experiments.perturbation import summarise_retrain
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    summarise_retrain,
    ranking=snakemake.input.ranking,
    inputs=list(snakemake.input.runs),
    output=snakemake.output[0],
)
