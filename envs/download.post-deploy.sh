#!/usr/bin/env bash
# Run by `snakemake --sdm conda` once, inside this environment, right after creating it. Snakemake runs a copy of
# this file (next to the environment, under .snakemake/conda/) from the directory Snakemake runs in, so neither $0
# nor the working directory tells where the workflow is: rules/common.smk exports SCSYNTH_WORKFLOW_DIR, this
# workflow's own folder, while Snakemake reads the workflow (also when it is another project's `module`).
# Installs scsynth, which every rule script imports, as a regular (not editable) package, without dependencies (the
# YAML next to this file pins them). Which scsynth, the first that is set:
#   SCSYNTH_PACKAGE   a pip requirement: a wheel or sdist file (dist/scsynth-0.1.0-py3-none-any.whl), or
#                     scsynth==0.1.0 from the package index pip is configured with
#   SCSYNTH_ROOT      a scsynth source folder (a checkout or an unpacked sdist)
#   SCSYNTH_WORKFLOW_DIR (set by the workflow)  the workflow's own source
# Sources are built from a temporary copy (setuptools writes build/ and *.egg-info next to the sources it builds),
# without build isolation or a package index: setuptools and wheel come from the YAML, no network is needed.
# SCSYNTH_EDITABLE=1 installs the source folder editable instead (library development: code changes apply without
# rebuilding the environment). The version below is part of the environment's hash (with this file's whole text):
# changing it recreates the environments; the installed scsynth must have it.
set -euo pipefail
version=0.1.0
pip=(python -m pip install --disable-pip-version-check --no-deps)
if [[ -n "${SCSYNTH_PACKAGE:-}" ]]; then
    "${pip[@]}" "$SCSYNTH_PACKAGE"
else
    src=${SCSYNTH_ROOT:-${SCSYNTH_WORKFLOW_DIR:-}}
    if [[ ! -f "$src/pyproject.toml" || ! -f "$src/scsynth_core/__init__.py" ]]; then
        echo "scsynth post-deploy: no scsynth source in '$src' (from SCSYNTH_ROOT, else SCSYNTH_WORKFLOW_DIR," \
            "which the workflow sets): set SCSYNTH_PACKAGE to a wheel or SCSYNTH_ROOT to a scsynth checkout" >&2
        exit 1
    fi
    if [[ "${SCSYNTH_EDITABLE:-0}" == 1 ]]; then
        "${pip[@]}" --no-build-isolation --no-index --editable "$src"
    else
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        cp -R "$src/pyproject.toml" "$src/README.md" "$src/scsynth_core" "$build/"
        "${pip[@]}" --no-build-isolation --no-index "$build"
    fi
fi
python - "$version" <<'PY'
import importlib.metadata
import sys

installed = importlib.metadata.version("scsynth")
if installed != sys.argv[1]:
    sys.exit(f"scsynth post-deploy: installed scsynth {installed}, but this workflow is scsynth {sys.argv[1]}")
PY
