# The perturbation experiment (Yu & Welch 2021, MichiGAN Figs. 6-7): one cell type x condition combination held
# out per run, MichiGAN trained on the rest, the held-out cells predicted by latent arithmetic and scored. Every
# rule calls its step (scsynth_core/experiments/perturbation.py) through workflow_scripts/run_step.py: named
# inputs, outputs and params are the step's keyword arguments (docs/development.md).

PERT = "results/perturbation"
PERT_RUN = "results/perturbation/{combination}/seed{seed}"
PERT_SECTION = config.get("perturbation", {})
# Fig. 7b: the retrain_lowest combinations with the lowest delta-H trained again, with seeds of their own.
PERT_RETRAIN_SEEDS = PERT_SECTION.get("retrain_seeds", [])
if PERT_SECTION.get("retrain_lowest") and set(PERT_RETRAIN_SEEDS) & set(PERT_SECTION["seeds"]):
    raise WorkflowError(
        "invalid configuration: perturbation.retrain_seeds must differ from perturbation.seeds "
        f"(both have {sorted(set(PERT_RETRAIN_SEEDS) & set(PERT_SECTION['seeds']))}): a retrained run is a new training"
    )


rule perturbation_simulate:
    output:
        output=os.path.join(PERT, "simulated.h5ad"),
    log:
        "logs/perturbation/simulate.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.perturbation:simulate",
        seed=PERT_SECTION.get("simulation_seed"),
        n_cells=PERT_SECTION.get("n_cells"),
        n_genes=PERT_SECTION.get("n_genes"),
        n_batches=PERT_SECTION.get("n_batches"),
        n_paths=PERT_SECTION.get("n_paths"),
        params=PERT_SECTION.get("simulation_params"),
    script:
        "../workflow_scripts/run_step.py"


rule perturbation_run:
    input:
        data=perturbation_data,
    output:
        metrics=os.path.join(PERT_RUN, "metrics.json"),
        cells=os.path.join(PERT_RUN, "cells.h5ad"),
        train_log=os.path.join(PERT_RUN, "train_log.tsv"),
    log:
        "logs/perturbation/{combination}/seed{seed}.log",
    benchmark:
        os.path.join(PERT_RUN, "benchmark.tsv")
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
        runtime=240,
    params:
        step="scsynth_core.experiments.perturbation:train_and_predict",
        combination=lambda w: perturbation_combinations()[w.combination],
        seed=wildcard_seed,
        cell_type_key=PERT_SECTION.get("cell_type_key"),
        condition_key=PERT_SECTION.get("condition_key"),
        control_type=PERT_SECTION.get("control_type"),
        balance=PERT_SECTION.get("balance"),
        codes=PERT_SECTION.get("codes"),
        preset=train_setting("preset", perturbation_train_settings),
        params=train_setting("params", perturbation_train_settings),
        max_steps=train_setting("max_steps", perturbation_train_settings),
        n_trees=PERT_SECTION.get("rf_trees"),
        n_components=PERT_SECTION.get("n_components"),
        device=config["device"],
    script:
        "../workflow_scripts/run_step.py"


rule perturbation_summary:
    input:
        inputs=lambda w: perturbation_runs("metrics.json"),
    output:
        runs=report(
            os.path.join(PERT, "runs.tsv"),
            caption="../report/perturbation_tables.rst",
            category="Perturbation",
            labels={"table": "every run and method"},
        ),
        table=report(
            os.path.join(PERT, "scores.tsv"),
            caption="../report/perturbation_tables.rst",
            category="Perturbation",
            labels={"table": "mean and sd over seeds"},
        ),
        improvement=report(
            os.path.join(PERT, "improvement.tsv"),
            caption="../report/perturbation_tables.rst",
            category="Perturbation",
            labels={"table": "GAN vs VAE decoder, delta-H"},
        ),
    log:
        "logs/perturbation/summary.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.perturbation:summarise",
    script:
        "../workflow_scripts/run_step.py"


rule perturbation_figures:
    input:
        runs=os.path.join(PERT, "runs.tsv"),
        cells=lambda w: perturbation_runs("cells.h5ad")[0],
    output:
        errors=report(
            os.path.join(PERT, "figures/rf_error.png"),
            caption="../report/perturbation_figures.rst",
            category="Perturbation",
            labels={"figure": "RF error per held-out combination"},
        ),
        delta_h=report(
            os.path.join(PERT, "figures/delta_h_improvement.png"),
            caption="../report/perturbation_figures.rst",
            category="Perturbation",
            labels={"figure": "delta-H vs improvement"},
        ),
        umap=report(
            os.path.join(PERT, "figures/umap.png"),
            caption="../report/perturbation_figures.rst",
            category="Perturbation",
            labels={"figure": "UMAP of predicted and real held-out cells"},
        ),
    log:
        "logs/perturbation/figures.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.perturbation:figures",
        n_neighbors=PERT_SECTION.get("umap_neighbors", 15),
    script:
        "../workflow_scripts/run_step.py"


checkpoint perturbation_lowest_delta_h:
    input:
        improvement=os.path.join(PERT, "improvement.tsv"),
    output:
        output=os.path.join(PERT, "lowest_delta_h.tsv"),
    log:
        "logs/perturbation/lowest_delta_h.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.perturbation:select_lowest_delta_h",
        n_lowest=PERT_SECTION.get("retrain_lowest", 0),
        by=PERT_SECTION.get("retrain_rank_by", "delta_h"),
    script:
        "../workflow_scripts/run_step.py"


rule perturbation_retrain_summary:
    input:
        ranking=os.path.join(PERT, "lowest_delta_h.tsv"),
        inputs=lambda w: perturbation_retrained("metrics.json"),
    output:
        output=report(
            os.path.join(PERT, "retrain_lowest_delta_h.tsv"),
            caption="../report/perturbation_retrain.rst",
            category="Perturbation",
            labels={"table": "lowest delta-H, retrained"},
        ),
    log:
        "logs/perturbation/retrain_summary.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.perturbation:summarise_retrain",
    script:
        "../workflow_scripts/run_step.py"


rule perturbation_retrain_figure:
    input:
        table=os.path.join(PERT, "retrain_lowest_delta_h.tsv"),
    output:
        output=report(
            os.path.join(PERT, "figures/retrain_lowest_delta_h.png"),
            caption="../report/perturbation_retrain.rst",
            category="Perturbation",
            labels={"figure": "lowest delta-H, retrained"},
        ),
    log:
        "logs/perturbation/retrain_figure.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.perturbation:retrain_figure",
    script:
        "../workflow_scripts/run_step.py"
