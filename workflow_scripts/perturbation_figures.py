from scsynth_core.experiments.perturbation import figures
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    figures,
    runs=snakemake.input.runs,
    cells=snakemake.input.cells,
    outputs={key: snakemake.output[key] for key in ("errors", "delta_h", "umap")},
    n_neighbors=snakemake.params.n_neighbors,
)
