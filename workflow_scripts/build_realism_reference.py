from scsynth_core.steps import build_realism_reference, run_logged

run_logged(
    snakemake.log[0],
    build_realism_reference,
    prepared=snakemake.input[0],
    representation=snakemake.output.representation,
    markers=snakemake.output.markers,
    n_components=snakemake.params.n_components,
    marker_genes_per_cluster=snakemake.params.marker_genes_per_cluster,
)
