from scsynth_core.experiments.realism import plot_realism_embeddings
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    plot_realism_embeddings,
    real=snakemake.input.prepared,
    split=snakemake.input.split,
    markers=snakemake.input.markers,
    generated=dict(zip(snakemake.params.models, snakemake.input.generated)),
    outputs=dict(snakemake.output.items()),
    seed=int(snakemake.wildcards.seed),
    marker=snakemake.params.get("marker", "auto"),  # realism.embedding_marker (passed when not "auto")
    dataset=snakemake.wildcards.dataset,
    title=f"{snakemake.wildcards.dataset}, seed {snakemake.wildcards.seed}",
)
