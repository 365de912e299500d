from scsynth_core.experiments.disentanglement import figures
from scsynth_core.steps import run_logged

models = snakemake.params.models
run_logged(
    snakemake.log[0],
    figures,
    runs=snakemake.input.runs,
    simulated=snakemake.input.simulated,
    latents=dict(zip(models, snakemake.input.latents)),
    dimensions=dict(zip(models, snakemake.input.dimensions)),
    simulation=snakemake.wildcards.simulation,
    outputs={
        "scores": snakemake.output.scores,
        "dimensions": snakemake.output.dimensions,
        **dict(zip(models, snakemake.output.umaps)),
    },
    n_neighbors=snakemake.params.n_neighbors,
)
