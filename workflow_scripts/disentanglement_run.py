from scsynth_core.experiments.disentanglement import train_and_score
from scsynth_core.steps import run_logged

settings = snakemake.params.settings
run_logged(
    snakemake.log[0],
    train_and_score,
    simulated=snakemake.input[0],
    model=snakemake.wildcards.model,
    latent_dim=int(snakemake.wildcards.dim),
    seed=int(snakemake.wildcards.seed),
    outputs=dict(snakemake.output.items()),
    preset=settings["preset"],
    params=settings["params"],
    max_steps=settings["max_steps"],
    device=snakemake.params.device,
    threads=snakemake.threads,
)
