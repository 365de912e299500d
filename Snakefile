# scsynth: deep generative models for single-cell RNA-seq, from raw data to each paper's figures.
# Data flow: download -> import -> prepare -> split -> train -> generate -> evaluate -> figures -> report.
# The science lives in the scsynth_core package; rules only wire files together.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


# Image of `--sdm apptainer` runs (containers/Dockerfile; docs/containers.md): $SCSYNTH_IMAGE, a registry reference
# (docker://...) or a .sif file, else the .sif that docs/containers.md builds. Unused without --sdm apptainer; it
# holds scsynth and its pinned dependencies in a virtualenv, no conda environments (so not with --sdm conda).
containerized: os.environ.get("SCSYNTH_IMAGE", "resources/scsynth-0.1.0.sif")


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/prepare.smk"
include: "rules/split.smk"
include: "rules/train.smk"
include: "rules/generate.smk"
include: "rules/realism.smk"
include: "rules/augmentation.smk"
include: "rules/classification.smk"
include: "rules/pilot.smk"
include: "rules/disentanglement.smk"
include: "rules/perturbation.smk"
include: "rules/leaderboard.smk"


# Rules that only read small tables (summaries, leaderboards, plots of ROC curves, F1 and training logs) run in
# the Snakemake process itself under a cluster executor: a SLURM job of its own would cost a queue wait and a
# Snakemake start-up for a second of work. Rules that read cells or embeddings stay cluster jobs.
localrules:
    all,
    summarise_realism,
    summarise_modern_metrics,
    summarise_per_cluster,
    realism_training_times,
    realism_leaderboard,
    plot_realism_roc,
    plot_per_cluster_roc,
    plot_correlation_heatmap,
    plot_realism_leaderboard,
    plot_modern_metrics,
    plot_training_curves,
    summarise_augmentation,
    plot_augmentation_f1,
    actinn_summary,
    pilot_summary,
    disentanglement_summary,
    disentanglement_code_data_summary,
    perturbation_summary,
    perturbation_retrain_summary,
    perturbation_retrain_figure,
    experiments_leaderboard,


rule all:
    default_target: True
    input:
        all_targets(),
