from scsynth_core.pilot import figures
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    figures,
    replicates=snakemake.input.replicates,
    reference=snakemake.input.reference,
    examples=dict(zip(snakemake.params.models, snakemake.input.examples)),
    dataset=snakemake.wildcards.dataset,
    outputs=dict(snakemake.output.items()),
    n_genes=snakemake.params.n_genes,
)
