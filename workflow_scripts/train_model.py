from scsynth_core.steps import run_logged, train_model

settings = snakemake.params.settings
run_logged(
    snakemake.log[0],
    train_model,
    prepared=snakemake.input.prepared,
    split=snakemake.input.split,
    output=snakemake.output.model,
    train_log=snakemake.output.train_log,
    model=snakemake.wildcards.model,
    preset=settings["preset"],
    params=settings["params"],
    max_steps=settings["max_steps"],
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    checkpoint=snakemake.params.checkpoint,
    threads=snakemake.threads,
    stream=snakemake.params.stream,
)
