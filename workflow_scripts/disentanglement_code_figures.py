from scsynth_core.experiments.disentanglement import code_figures
from scsynth_core.steps import run_logged

params = snakemake.params
outputs = dict(zip([f"umap_{g}" for g in params.umaps], snakemake.output.umaps))
outputs |= dict(zip([f"traversal_{g}" for g in params.traversals], snakemake.output.traversals))
run_logged(
    snakemake.log[0],
    code_figures,
    cells=dict(zip(params.models, snakemake.input)),
    simulation=snakemake.wildcards.simulation,
    outputs=outputs,
    n_neighbors=params.n_neighbors,
)
