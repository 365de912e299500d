from scsynth_core.experiments.classification import actinn_classification
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    actinn_classification,
    prepared=snakemake.input.prepared,
    split=snakemake.input.split,
    activa=snakemake.input.get("activa"),  # none: ACTIVA is not a realism model
    scores=snakemake.output.scores,
    per_type=snakemake.output.per_type,
    model=snakemake.output.model,
    dataset=snakemake.params.dataset,
    preset=snakemake.params.preset,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
