from scsynth_core.experiments.realism import build_realism_representation
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    build_realism_representation,
    prepared=snakemake.input.prepared,
    split=snakemake.input.split,
    representation=snakemake.output[0],
    n_components=snakemake.params.n_components,
    kind=snakemake.params.get("kind", "scsynth"),  # realism.representation (the rule passes it when not the default)
    seed=int(snakemake.wildcards.seed),
)
