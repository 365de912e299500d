# The disentanglement experiment (Yu & Welch 2021, MichiGAN Fig. 1, Tables 1-4): Splatter simulations with known
# factors, encoded by PCA / VAE / beta-TCVAE at each latent dimension and seed, scored against the factors. Every
# rule calls its step (scsynth_core/experiments/disentanglement.py) through workflow_scripts/run_step.py: named
# inputs, outputs and params are the step's keyword arguments (docs/development.md).

# Simulations: "linear" / "nonlinear" Splatter steps (Tables 1-2) and "prosstt3/4/5" PROSSTT-style trees (Table 3).

from scsynth_core.experiments.disentanglement import check_run_params

DIS = "results/disentanglement"
DIS_RUN = "results/disentanglement/{simulation}/{model}/dim{dim}_seed{seed}"
DIS_LOGS = "logs/disentanglement/{simulation}/{model}/dim{dim}_seed{seed}"
DIS_SECTION = config.get("disentanglement", {})

if "disentanglement" in EXPERIMENTS:
    try:
        check_run_params(config["disentanglement"], lambda model: model_settings(config, model))
    except ScsynthError as exc:
        raise WorkflowError(f"invalid configuration: {exc}")


rule simulate_splatter:
    output:
        output=os.path.join(DIS, "{simulation}/simulated.h5ad"),
    log:
        "logs/disentanglement/{simulation}/simulate.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.disentanglement:simulate",
        simulation=lambda w: w.simulation,
        n_cells=DIS_SECTION.get("n_cells"),
        n_genes=DIS_SECTION.get("n_genes"),
        seed=DIS_SECTION.get("simulation_seed"),
        params=DIS_SECTION.get("simulation_params"),
        prosstt_params=DIS_SECTION.get("prosstt_params"),
    script:
        "../workflow_scripts/run_step.py"


rule disentanglement_run:
    input:
        simulated=os.path.join(DIS, "{simulation}/simulated.h5ad"),
    output:
        metrics=os.path.join(DIS_RUN, "metrics.json"),
        latents=os.path.join(DIS_RUN, "latents.npy"),
        train_log=os.path.join(DIS_RUN, "train_log.tsv"),
        dimensions=os.path.join(DIS_RUN, "dimensions.tsv"),
    log:
        os.path.join(DIS_LOGS, "run.log"),
    benchmark:
        os.path.join(DIS_RUN, "benchmark.tsv")
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
        runtime=240,
    params:
        step="scsynth_core.experiments.disentanglement:train_and_score",
        model=lambda w: w.model,
        latent_dim=lambda w: int(w.dim),
        seed=wildcard_seed,
        preset=train_setting("preset", disentanglement_settings),
        params=train_setting("params", disentanglement_settings),
        max_steps=train_setting("max_steps", disentanglement_settings),
        device=config["device"],
    script:
        "../workflow_scripts/run_step.py"


rule disentanglement_summary:
    input:
        inputs=lambda w: [path for paths in disentanglement_runs("metrics.json").values() for path in paths],
    output:
        runs=report(
            os.path.join(DIS, "runs.tsv"),
            caption="../report/disentanglement_runs.rst",
            category="Disentanglement",
            labels={"table": "every run"},
        ),
        table=report(
            os.path.join(DIS, "scores.tsv"),
            caption="../report/disentanglement_scores.rst",
            category="Disentanglement",
            labels={"table": "Tables 1-4: MIG, FactorVAE, correlation gap"},
        ),
    log:
        "logs/disentanglement/summary.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.disentanglement:summarise",
        input_simulations=lambda w: file_groups(disentanglement_runs("metrics.json")),
    script:
        "../workflow_scripts/run_step.py"


rule disentanglement_figures:
    input:
        runs=os.path.join(DIS, "runs.tsv"),
        simulated=os.path.join(DIS, "{simulation}/simulated.h5ad"),
        latents=lambda w: list(disentanglement_examples(w.simulation).values()),
        dimensions=lambda w: list(disentanglement_examples(w.simulation, "dimensions.tsv").values()),
    output:
        scores=report(
            os.path.join(DIS, "figures/{simulation}_scores.png"),
            caption="../report/disentanglement_figures.rst",
            category="Disentanglement",
            subcategory="{simulation} step",
            labels={"simulation": "{simulation}", "figure": "Fig. 1: scores by latent dimensions"},
        ),
        dimensions_figure=report(
            os.path.join(DIS, "figures/{simulation}_dimensions.png"),
            caption="../report/disentanglement_dimensions.rst",
            category="Disentanglement",
            subcategory="{simulation} step",
            labels={"simulation": "{simulation}", "figure": "Fig. 1c-d: |rho| and MI per latent dimension"},
        ),
        umaps=[
            report(
                os.path.join(DIS, f"figures/{{simulation}}_umap_{model}.png"),
                caption="../report/disentanglement_figures.rst",
                category="Disentanglement",
                subcategory="{simulation} step",
                labels={"simulation": "{simulation}", "figure": f"UMAP of {model} codes"},
            )
            for model in DIS_SECTION.get("models", [])
        ],
    log:
        "logs/disentanglement/{simulation}/figures.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.disentanglement:figures",
        simulation=lambda w: w.simulation,
        models=DIS_SECTION.get("models", []),
        n_neighbors=DIS_SECTION.get("umap_neighbors", 30),
    script:
        "../workflow_scripts/run_step.py"


# The code-data comparison (MichiGAN Fig. 4): WGAN-GP and MichiGAN trained on each simulation; do the factors of
# the generated cells (read off their 3 nearest real cells) follow the generator's codes?
rule disentanglement_code_data:
    input:
        simulated=os.path.join(DIS, "{simulation}/simulated.h5ad"),
    output:
        output=os.path.join(DIS, "{simulation}/code_data/{model}_seed{seed}.json"),
        cells_output=os.path.join(DIS, "{simulation}/code_data/{model}_seed{seed}_cells.npz"),
    log:
        "logs/disentanglement/{simulation}/code_data/{model}_seed{seed}.log",
    benchmark:
        os.path.join(DIS, "{simulation}/code_data/{model}_seed{seed}_benchmark.tsv")
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
        runtime=240,
    params:
        step="scsynth_core.experiments.disentanglement:code_data_run",
        model=lambda w: w.model,
        seed=wildcard_seed,
        preset=train_setting("preset", disentanglement_settings),
        params=train_setting("params", disentanglement_settings),
        max_steps=train_setting("max_steps", disentanglement_settings),
        device=config["device"],
        n_cells=DIS_SECTION.get("code_data_cells", 3000),
        k=DIS_SECTION.get("code_data_neighbors", 3),
        traversal_steps=DIS_SECTION.get("traversal_steps", 10),
        traversal_draws=DIS_SECTION.get("traversal_draws", 5),
    script:
        "../workflow_scripts/run_step.py"


rule disentanglement_code_data_summary:
    input:
        inputs=lambda w: [path for paths in code_data_runs().values() for path in paths],
    output:
        table=report(
            os.path.join(DIS, "code_data.tsv"),
            caption="../report/disentanglement_code_data.rst",
            category="Disentanglement",
            labels={"table": "Fig. 4: code-data correlations"},
        ),
        scores=report(
            os.path.join(DIS, "code_data_scores.tsv"),
            caption="../report/disentanglement_code_data_scores.rst",
            category="Disentanglement",
            labels={"table": "Table 4: correlation gap of generated cells"},
        ),
        figures=[
            report(
                os.path.join(DIS, f"figures/{simulation}_code_data.png"),
                caption="../report/disentanglement_code_data.rst",
                category="Disentanglement",
                subcategory=f"{simulation} step",
                labels={"simulation": simulation, "figure": "Fig. 4: code-data correlations"},
            )
            for simulation in DIS_SECTION.get("simulations", [])
        ],
    log:
        "logs/disentanglement/code_data_summary.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.disentanglement:code_data_summary",
        input_simulations=lambda w: file_groups(code_data_runs()),
        simulations=DIS_SECTION.get("simulations", []),
    script:
        "../workflow_scripts/run_step.py"


# MichiGAN Fig. 4a and Fig. 5 from the first seed's code-data run of each GAN: UMAPs of the generated cells coloured
# by their codes, and latent traversals of MichiGAN and its beta-TCVAE (computed in the run, where the model is).
rule disentanglement_code_figures:
    input:
        cells=lambda w: list(code_data_examples(w.simulation).values()),
    output:
        umaps=[
            report(
                os.path.join(DIS, f"figures/{{simulation}}_code_umap_{generator}.png"),
                caption="../report/disentanglement_code_figures.rst",
                category="Disentanglement",
                subcategory="{simulation} step",
                labels={"simulation": "{simulation}", "figure": f"Fig. 4a: {generator} cells coloured by codes"},
            )
            for generator in code_data_generators()
        ],
        traversals=[
            report(
                os.path.join(DIS, f"figures/{{simulation}}_traversal_{generator}.png"),
                caption="../report/disentanglement_code_figures.rst",
                category="Disentanglement",
                subcategory="{simulation} step",
                labels={"simulation": "{simulation}", "figure": f"Fig. 5: {generator} latent traversals"},
            )
            for generator in code_data_generators(traversals=True)
        ],
    log:
        "logs/disentanglement/{simulation}/code_figures.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.disentanglement:code_figures",
        simulation=lambda w: w.simulation,
        models=lambda w: list(code_data_examples(w.simulation)),
        umap_generators=code_data_generators(),
        traversal_generators=code_data_generators(traversals=True),
        n_neighbors=DIS_SECTION.get("umap_neighbors", 30),
    script:
        "../workflow_scripts/run_step.py"
