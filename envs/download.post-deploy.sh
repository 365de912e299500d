#!/usr/bin/env bash
# Run by `snakemake --sdm conda` once, inside this environment, right after creating it, from the directory
# Snakemake runs in: the repository root (if you run with --directory elsewhere, set SCSYNTH_ROOT to the
# repository). Installs the checked-out scsynth package, which every rule script imports: editable (code
# changes apply without rebuilding the environment), without dependencies (the YAML next to this file pins
# them) and without build isolation (setuptools comes from the YAML; no package index needed).
set -euo pipefail
python -m pip install --no-deps --no-build-isolation --editable "${SCSYNTH_ROOT:-.}"
