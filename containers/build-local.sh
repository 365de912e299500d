#!/usr/bin/env bash
# Build containers/Dockerfile with buildah (no daemon) on a Debian machine that reaches PyPI and Debian's
# archive but no container registry, then smoke-test the image. Run as root from anywhere; used by
# tests/test_container.py when SCSYNTH_CONTAINER_BUILD=1. Steps:
#   1. the base image: Debian bookworm (Python 3.11) made by debootstrap, imported as localhost/debian-python
#      (stands in for python:3.11-slim-bookworm, which cannot be pulled here);
#   2. buildah bud with chroot isolation (no OCI runtime or cgroups needed), torch from a local wheel folder
#      when PIP_FIND_LINKS names one, pip trusting this machine's CA bundle;
#   3. `scsynth --version`, `scsynth models` and `snakemake -n` inside the image, as its non-root user.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(python3 -c 'import re; print(re.search(r"__version__ = \"(.+)\"", open("scsynth_core/__init__.py").read())[1])')
tag=localhost/scsynth:$version
base=localhost/debian-python:3.11-bookworm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install -y buildah debootstrap" >&2; exit 2; }
done

if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs" \
        http://deb.debian.org/debian >"$work/debootstrap.log" || { tail -20 "$work/debootstrap.log"; exit 1; }
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$work/rootfs" /
    buildah commit --quiet "$ctr" "$base"
    buildah rm "$ctr" >/dev/null
    rm -rf "$work/rootfs"
fi

wheels=${PIP_FIND_LINKS:-/opt/wheels}   # a folder with torch's CPU wheel, if this machine has one
build_args=(--build-arg "PYTHON_IMAGE=$base" --build-arg "PIP_CERT=/certs/ca.crt"
            -v /etc/ssl/certs/ca-certificates.crt:/certs/ca.crt:ro)
if [ -d "$wheels" ]; then
    # download.pytorch.org may be out of reach: torch from the folder (its +cpu build wins over PyPI's).
    build_args+=(--build-arg TORCH_INDEX_URL=https://pypi.org/simple --build-arg PIP_FIND_LINKS=/wheels
                 -v "$wheels:/wheels:ro")
fi
buildah bud --isolation chroot --layers -f containers/Dockerfile -t "$tag" "${build_args[@]}" .

ctr=$(buildah from "$tag")
trap 'buildah rm "$ctr" >/dev/null; rm -rf "$work"' EXIT
run() { buildah run --isolation chroot --user 1000:1000 --workingdir /home/scsynth "$ctr" -- "$@"; }
run scsynth --version
run scsynth models
# The workflow copied into the image, dry-run from a scratch working directory as the non-root user (the
# Snakefile reads config/config.yaml relative to the working directory, hence --configfile).
run bash -c 'mkdir -p /tmp/dry && cd /tmp/dry && snakemake -s /opt/scsynth/Snakefile --configfile /opt/scsynth/config/config.yaml -n --cores 1 | tail -1'
echo "smoke test passed: $tag"
