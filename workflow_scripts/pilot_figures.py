from scsynth_core.experiments.pilot import figures
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    figures,
    replicates=snakemake.input.replicates,
    reference=snakemake.input.reference,
    examples=dict(zip(snakemake.params.models, snakemake.input.examples)),
    zero_genes=dict(zip(snakemake.params.models, snakemake.input.zero_genes)),
    dataset=snakemake.wildcards.dataset,
    outputs=dict(snakemake.output.items()),
    example_genes=snakemake.params.example_genes,
)
