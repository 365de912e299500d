"""docs/figures.md, the index of the papers' figures and tables: its rows are well formed, and every output file
it lists is an output of a dry run of the row's config (one dry run per config, not per row)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

import pytest

from workflow_utils import REPO, copy_workflow, snakemake

INDEX = REPO / "docs" / "figures.md"
HEADER = "| paper | figure/table | what it shows | config | outputs under `results/` | status |"
PAPERS = {"Marouf 2020", "Heydari 2022", "Treppner 2021", "Yu & Welch 2021"}
STATUS = re.compile(r"paper's definition|our definition \(differs: .+\)|absent \(.+\)")
CODE = re.compile(r"`([^`]+)`")
BRACES = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Row:
    paper: str
    figure: str
    config: str | None
    outputs: tuple[str, ...]
    status: str


def index_rows() -> list[Row]:
    """The rows of the index table (the one under ``HEADER``)."""
    lines = INDEX.read_text().splitlines()
    start = lines.index(HEADER) + 2  # skip the header and its |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        assert len(cells) == 6, f"{INDEX}: row with {len(cells)} cells instead of 6: {line}"
        paper, figure, _, config, outputs, status = cells
        configs = CODE.findall(config)
        assert len(configs) <= 1, f"{INDEX}: {paper} {figure}: one config per row, got {configs}"
        rows.append(Row(paper, figure, configs[0] if configs else None, tuple(CODE.findall(outputs)), status))
    return rows


def expand(pattern: str) -> list[str]:
    """``a{b,c}d`` -> ``[abd, acd]``, every brace group in turn."""
    match = BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [path for choice in match.group(1).split(",") for path in expand(head + choice + tail)]


def summary_outputs(output: str) -> set[str]:
    """The output files of ``snakemake --summary`` (first column of the rows after its header)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output_file\t")) + 1
    return {line.split("\t", 1)[0] for line in lines[start:] if "\t" in line}


ROWS = index_rows()
CONFIGS = sorted({row.config for row in ROWS if row.outputs})


def test_index_rows_name_a_paper_a_status_and_for_produced_figures_a_config_and_outputs():
    assert {row.paper for row in ROWS} == PAPERS
    for row in ROWS:
        where = f"{INDEX}: {row.paper} {row.figure}"
        assert STATUS.fullmatch(row.status), f"{where}: status {row.status!r}"
        if row.status.startswith("absent"):
            assert row.config is None and not row.outputs, f"{where}: an absent figure lists no config or outputs"
            continue
        assert row.config and (REPO / row.config).is_file(), f"{where}: config {row.config!r} is not a file"
        assert row.outputs and all(path.startswith("results/") for path in row.outputs), f"{where}: {row.outputs}"


def test_expand_fills_every_brace_group():
    assert expand("r/{a,b}/x_{1,2}.png") == ["r/a/x_1.png", "r/a/x_2.png", "r/b/x_1.png", "r/b/x_2.png"]
    assert expand("r/plain.tsv") == ["r/plain.tsv"]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("figures_index") / "wf")


@pytest.fixture(scope="module")
def config_outputs(workflow):
    """``config -> output files of its dry run`` (``--summary``), each config run once per module, in one folder."""
    cache: dict[str, set[str]] = {}

    def outputs(config: str) -> set[str]:
        if config not in cache:
            extra = [] if config == "config/config.yaml" else [config]
            proc = snakemake(workflow, "--summary", "--configfile", "config/config.yaml", *extra, check=True)
            cache[config] = summary_outputs(proc.stdout)
        return cache[config]

    return outputs


@pytest.mark.parametrize("config", CONFIGS)
def test_every_indexed_output_is_a_target_of_its_config(config_outputs, config):
    targets = config_outputs(config)
    missing = [
        f"{row.paper} {row.figure}: {path}"
        for row in ROWS
        if row.config == config
        for pattern in row.outputs
        for path in expand(pattern)
        if not (fnmatch.filter(targets, path) if "*" in path else path in targets)
    ]
    assert not missing, f"not an output of {config}:\n" + "\n".join(missing)


def test_the_two_augmentation_configs_write_disjoint_outputs(config_outputs):
    """augmentation.yaml (Marouf) and augmentation_activa.yaml (Heydari) in one folder: each run writes below its
    own folder (augmentation.run); only the shared inputs (download, raw and prepared data) are in common."""
    outputs = {
        run: config_outputs(f"config/experiments/{name}.yaml")
        for run, name in (("marouf2020", "augmentation"), ("heydari2022", "augmentation_activa"))
    }
    for run, paths in outputs.items():
        mine = {p for p in paths if p.startswith("results/augmentation/")}
        assert mine and all(p.startswith(f"results/augmentation/{run}/pbmc68k/") for p in mine), run
    shared = outputs["marouf2020"] & outputs["heydari2022"]
    assert shared == {
        "resources/datasets/pbmc68k/manifest.json", "results/data/pbmc68k/raw.h5ad",
        "results/data/pbmc68k/prepared.h5ad",
    }  # fmt: skip
