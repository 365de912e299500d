# What to generate depends on the experiment (generation_inputs and generation_request in rules/common.smk):
# realism asks for as many cells as the real test set, with its cluster composition; augmentation for N cells of
# the target cluster.


rule generate_cells:
    input:
        unpack(generation_inputs),
        model=os.path.join(RUN, "model.pt"),
    output:
        output=os.path.join(RUN, "generated.h5ad"),
    log:
        os.path.join(LOGS, "generate.log"),
    benchmark:
        os.path.join(RUN, "generate_benchmark.tsv")
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
    params:
        step="scsynth_core.steps:generate_cells",
        like_subset=lambda w: generation_request(w)["like_subset"],
        target=lambda w: generation_request(w)["target"],
        n_cells=lambda w: generation_request(w)["n_cells"],
        device=config["device"],
        seed=replicate_seed,
    script:
        "../workflow_scripts/run_step.py"
