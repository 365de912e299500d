# One leaderboard over every configured experiment (scsynth_core/leaderboard.py): it reads the summary tables of
# realism, augmentation, pilot, disentanglement and perturbation, so it belongs to none of their rule files.


rule experiments_leaderboard:
    input:
        unpack(leaderboard_inputs),
    output:
        output=report(
            "results/leaderboard.tsv",
            caption="../report/experiments_leaderboard.rst",
            category="Leaderboard",
            labels={"table": "every experiment, ranked per dataset"},
        ),
        figure=report(
            "results/leaderboard.png",
            caption="../report/experiments_leaderboard.rst",
            category="Leaderboard",
            labels={"figure": "every experiment, ranked per dataset"},
        ),
    log:
        "logs/leaderboard.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.leaderboard:write_leaderboard",
        n_extra=config.get("augmentation", {}).get("n_generated"),
        augmentation_datasets=config.get("augmentation", {}).get("datasets", []),
        perturbation_dataset=config.get("perturbation", {}).get("dataset", "simulated"),
    script:
        "../workflow_scripts/run_step.py"
