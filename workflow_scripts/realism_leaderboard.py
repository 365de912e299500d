from scsynth_core.experiments.realism import leaderboard
from scsynth_core.steps import run_logged

run_logged(snakemake.log[0], leaderboard, summaries=list(snakemake.input), output=snakemake.output[0])
