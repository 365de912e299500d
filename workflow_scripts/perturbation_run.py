from scsynth_core.experiments.perturbation import train_and_predict
from scsynth_core.steps import run_logged

section, settings = snakemake.params.section, snakemake.params.settings
run_logged(
    snakemake.log[0],
    train_and_predict,
    data=snakemake.input[0],
    combination=snakemake.params.combination,
    seed=int(snakemake.wildcards.seed),
    outputs=dict(snakemake.output.items()),
    cell_type_key=section["cell_type_key"],
    condition_key=section["condition_key"],
    control_type=section["control_type"],
    balance=section["balance"],
    codes=section["codes"],
    preset=settings["preset"],
    params=settings["params"],
    max_steps=settings["max_steps"],
    n_trees=section["rf_trees"],
    n_components=section["n_components"],
    device=snakemake.params.device,
    threads=snakemake.threads,
)
