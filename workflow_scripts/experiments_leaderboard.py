from scsynth_core.leaderboard import write_leaderboard
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    write_leaderboard,
    output=snakemake.output.table,
    figure=snakemake.output.figure,
    realism=snakemake.input.get("realism"),
    per_cluster=list(snakemake.input.get("per_cluster", [])),
    augmentation=list(snakemake.input.get("augmentation", [])),
    n_extra=snakemake.params.n_extra,
    pilot=list(snakemake.input.get("pilot", [])),
    disentanglement=snakemake.input.get("disentanglement"),
    perturbation=snakemake.input.get("perturbation"),
    perturbation_dataset=snakemake.params.perturbation_dataset,
)
