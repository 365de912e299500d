# The pilot experiment (Treppner et al. 2021): train on pilot subsamples, generate the original data's size,
# compare with the original. One job trains several replicates (pilot size, seed) of one model
# (replicates_per_job), so start-up is paid once per batch.

from scsynth_core.experiments.pilot import MODEL_VARIANTS

PILOT = "results/pilot/{dataset}"
PILOT_RUN = "results/pilot/{dataset}/{model}"
PILOT_LOGS = "logs/pilot/{dataset}/{model}"
# pilot.models may name pilot variants of a model (scdbm_reference: scDBM as the authors trained it).
PILOT_MODEL = "|".join([*available_models(), *MODEL_VARIANTS])


rule pilot_reference:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
    output:
        output=os.path.join(PILOT, "reference.h5ad"),
    log:
        "logs/pilot/{dataset}/reference.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.pilot:build_reference",
        n_pcs=config["pilot"]["n_pcs"],
        n_neighbors=config["pilot"]["n_neighbors"],
    script:
        "../workflow_scripts/run_step.py"


rule pilot_replicates:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        reference=os.path.join(PILOT, "reference.h5ad"),
    output:
        output=os.path.join(PILOT_RUN, "batch{batch}.tsv"),
        example=os.path.join(PILOT_RUN, "batch{batch}_example.h5ad"),
    log:
        os.path.join(PILOT_LOGS, "batch{batch}.log"),
    benchmark:
        os.path.join(PILOT_RUN, "batch{batch}_benchmark.tsv")
    wildcard_constraints:
        model=PILOT_MODEL,
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
        runtime=240,
    params:
        step="scsynth_core.experiments.pilot:run_pilot_replicates",
        dataset=lambda w: w.dataset,
        model=lambda w: w.model,
        preset=train_setting("preset", pilot_train_settings),
        params=train_setting("params", pilot_train_settings),
        max_steps=train_setting("max_steps", pilot_train_settings),
        replicates=pilot_batch_replicates,
        replace=config["pilot"]["replace"],
        resolution=config["pilot"]["resolution"],
        n_neighbors=config["pilot"]["n_neighbors"],
        holdout=config["pilot"]["scdbm_holdout"],
        device=config["device"],
    script:
        "../workflow_scripts/run_step.py"


rule pilot_zero_inflation:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
    output:
        output="results/pilot/{dataset}/{model}/zero_inflation.json",
        genes_output="results/pilot/{dataset}/{model}/zero_inflation_genes.tsv",
    log:
        "logs/pilot/{dataset}/{model}/zero_inflation.log",
    wildcard_constraints:
        model=PILOT_MODEL,
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.pilot:zero_inflation_check",
        model=lambda w: w.model,
        preset=train_setting("preset", pilot_train_settings),
        params=train_setting("params", pilot_train_settings),
        max_steps=train_setting("max_steps", pilot_train_settings),
        size=max(config["pilot"]["pilot_sizes"]),
        seed=config["pilot"]["seeds"][0],
        fraction=config["pilot"]["added_zeros"],
        replace=config["pilot"]["replace"],
        holdout=config["pilot"]["scdbm_holdout"],
        device=config["device"],
    script:
        "../workflow_scripts/run_step.py"


rule pilot_summary:
    input:
        inputs=lambda w: pilot_runs(w.dataset, "batch{batch}.tsv"),
        zero_checks=lambda w: [f"results/pilot/{w.dataset}/{m}/zero_inflation.json" for m in config["pilot"]["models"]],
    output:
        output=report(
            os.path.join(PILOT, "replicates.tsv"),
            caption="../report/pilot_replicates.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "every replicate"},
        ),
        table1=report(
            os.path.join(PILOT, "count_difference.tsv"),
            caption="../report/pilot_table1.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "Table 1: cluster count differences"},
        ),
        zeros=report(
            os.path.join(PILOT, "zero_inflation.tsv"),
            caption="../report/pilot_zeros.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "added-zeros check"},
        ),
        overhead=os.path.join(PILOT, "job_overhead.json"),
    log:
        "logs/pilot/{dataset}/summary.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.pilot:summarise",
    script:
        "../workflow_scripts/run_step.py"


rule pilot_figures:
    input:
        replicates=os.path.join(PILOT, "replicates.tsv"),
        reference=os.path.join(PILOT, "reference.h5ad"),
        examples=lambda w: list(pilot_examples(w.dataset).values()),
        zero_genes=lambda w: [
            f"results/pilot/{w.dataset}/{m}/zero_inflation_genes.tsv" for m in config["pilot"]["models"]
        ],
    output:
        dbi=report(
            os.path.join(PILOT, "figures/dbi.png"),
            caption="../report/pilot_boxplots.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig. 2: Davies-Bouldin index"},
        ),
        ari=report(
            os.path.join(PILOT, "figures/ari.png"),
            caption="../report/pilot_boxplots.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "adjusted and paired Rand index"},
        ),
        mad=report(
            os.path.join(PILOT, "figures/mad_table.png"),
            caption="../report/pilot_mad.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig. 3: per-gene MAD table"},
        ),
        marginals=report(
            os.path.join(PILOT, "figures/gene_marginals.png"),
            caption="../report/pilot_marginals.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Supp. Fig. 3-4: gene marginals"},
        ),
        added_zeros=report(
            os.path.join(PILOT, "figures/added_zeros.png"),
            caption="../report/pilot_added_zeros.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Supp. Fig. 5: zeros per gene after adding zeros"},
        ),
        example_umaps=report(
            os.path.join(PILOT, "figures/example_umaps.png"),
            caption="../report/pilot_example_umaps.rst",
            category="Pilot studies",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Supp. Fig. 7: synthetic cells over the original UMAP"},
        ),
    log:
        "logs/pilot/{dataset}/figures.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.pilot:figures",
        dataset=lambda w: w.dataset,
        models=config["pilot"]["models"],
        example_genes=lambda w: pilot_example_genes(w.dataset),
    script:
        "../workflow_scripts/run_step.py"
