from scsynth_core.steps import plot_leaderboard, run_logged

run_logged(
    snakemake.log[0],
    plot_leaderboard,
    summary=snakemake.input[0],
    output=snakemake.output[0],
    title=f"{snakemake.wildcards.dataset}: realism",
)
