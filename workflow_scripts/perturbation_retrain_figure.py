from scsynth_core.experiments.perturbation import retrain_figure
from scsynth_core.steps import run_logged

run_logged(snakemake.log[0], retrain_figure, table=snakemake.input[0], output=snakemake.output[0])
