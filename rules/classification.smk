# ACTINN's cell-type accuracy and F1 per dataset (Heydari et al. 2022 Supp. Tables S6-S7), part of the realism
# experiment when realism.actinn_tables is true; steps in scsynth_core/experiments/classification.py, called through
# workflow_scripts/run_step.py.
ACTINN_RUN = "results/realism/{dataset}/actinn/seed{seed}"


rule actinn_classification:
    input:
        unpack(actinn_conditioner),
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
    output:
        scores=os.path.join(ACTINN_RUN, "scores.tsv"),
        per_type=os.path.join(ACTINN_RUN, "per_type.tsv"),
        model=os.path.join(ACTINN_RUN, "actinn.pt"),
    log:
        "logs/realism/{dataset}/actinn/seed{seed}.log",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
        runtime=60,
    params:
        step="scsynth_core.experiments.classification:actinn_classification",
        dataset=lambda w: w.dataset,
        seed=wildcard_seed,
        preset=config["preset"],
        device=config["device"],
    script:
        "../workflow_scripts/run_step.py"


rule actinn_summary:
    input:
        inputs=expand(
            os.path.join(ACTINN_RUN, "scores.tsv"),
            seed=config["realism"]["seeds"],
            allow_missing=True,
        ),
    output:
        output=report(
            "results/realism/{dataset}/actinn/summary.tsv",
            caption="../report/actinn_table.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "ACTINN accuracy and F1"},
        ),
    log:
        "logs/realism/{dataset}/actinn/summary.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.classification:summarise_actinn",
    script:
        "../workflow_scripts/run_step.py"
