from scsynth_core.experiments.classification import summarise_actinn
from scsynth_core.steps import run_logged

run_logged(snakemake.log[0], summarise_actinn, inputs=list(snakemake.input), output=snakemake.output[0])
