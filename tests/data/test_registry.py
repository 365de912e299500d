"""The dataset registry: the real config validates; bad ones fail clearly; a url dataset round-trips."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import sys
import tarfile
import types
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
import yaml

from http_fixtures import serve
from scsynth_core.atomic import write_h5ad
from scsynth_core.data.io import FORMATS
from scsynth_core.data.registry import (
    fetch_dataset_files,
    get_dataset,
    load_raw_dataset,
    load_registry,
    local_filename,
    read_manifest,
)
from scsynth_core.errors import ConfigError, DataError, DownloadError

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "datasets.yaml"
SCHEMA = ROOT / "config" / "datasets.schema.yaml"

COUNTS = np.array([[0, 3, 0, 1], [2, 0, 0, 0], [0, 0, 7, 1]])  # cells x genes
CELLS = ["AAAC-1", "AAAG-1", "AAAT-1"]
GENES = ["CD3E", "MS4A1", "NKG7", "LYZ"]

PAPER_DATASETS = {  # every dataset the four papers use -> the registry entry that provides it
    "pbmc68k": "PBMC 68k donor A (scGAN, ACTIVA)",
    "brain_large": "10x 1.3M mouse brain (scGAN)",
    "brain_small": "10x neuron20k Brain Small (scGAN, ACTIVA)",
    "pbmc4k": "10x PBMC 4k (Treppner)",
    "zeisel2015": "Zeisel 2015 (scGAN, Treppner)",
    "segerstolpe2016": "Segerstolpe E-MTAB-5061 (Treppner)",
    "tabula_muris": "Tabula Muris (MichiGAN)",
    "sciplex3": "sci-Plex GSM4150378 (MichiGAN)",
    "pancreas_scvelo": "scVelo pancreas (MichiGAN)",
    "paul15": "Paul15 (scGAN)",
}


# --------------------------------------------------------------------------------------------- the real registry


@pytest.fixture(scope="module")
def registry():
    return load_registry(REGISTRY)


def test_real_registry_validates_and_covers_the_papers(registry):
    assert set(PAPER_DATASETS) <= set(registry)
    assert registry["pbmc68k_demo"]["source"] == "bundled"
    for name, spec in registry.items():
        assert set(spec["papers"]) <= {"marouf2020", "heydari2022", "treppner2021", "yu2021"}, name
        assert spec["recipe"] in {"marouf", "treppner", "treppner_segerstolpe", "scanpy_default"}, name


def test_url_entries_have_http_urls_and_known_formats(registry):
    url_entries = {n: s for n, s in registry.items() if s["source"] == "url"}
    assert len(url_entries) >= len(PAPER_DATASETS)
    for name, spec in url_entries.items():
        assert spec["counts"] in spec["files"], name
        for key, f in spec["files"].items():
            assert f["url"].startswith(("http://", "https://")), (name, key)
            assert f["format"] in FORMATS, (name, key)
            assert local_filename(f), (name, key)


def test_known_urls_from_the_papers_sources(registry):
    assert registry["pbmc68k"]["files"]["matrix"]["url"] == (
        "http://cf.10xgenomics.com/samples/cell-exp/1.1.0/fresh_68k_pbmc_donor_a/"
        "fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz"
    )
    assert registry["pbmc68k"]["labels"] == {"file": "annotation", "index_column": "barcodes", "column": "celltype"}
    assert registry["paul15"]["files"]["matrix"]["url"] == "https://falexwolf.de/data/paul15.h5"


def test_schema_formats_match_the_readers():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert set(schema["$defs"]["format"]["enum"]) == set(FORMATS)


def test_defaults_are_filled(registry):
    spec = registry["pbmc4k"]
    assert spec["label_key"] is None and spec["recipe_params"] == {}
    assert spec["files"]["matrix"]["sha256"] is None and spec["files"]["matrix"]["options"] == {}


def test_get_dataset(registry):
    assert get_dataset(registry, "pbmc68k")["source"] == "url"
    with pytest.raises(ConfigError, match="'nope' is not in the registry.*pbmc68k_demo"):
        get_dataset(registry, "nope")


# --------------------------------------------------------------------------------------------- bad registries


def write_registry(folder: Path, data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCHEMA, folder / "datasets.schema.yaml")
    path = folder / "datasets.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def url_entry(**changes) -> dict:
    entry = {
        "source": "url",
        "files": {"matrix": {"url": "https://example.org/m.tar.gz", "format": "10x_mtx_tar"}},
        "counts": "matrix",
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (url_entry(recipe_params=3), "dataset 'ds': recipe_params: 3 is not of type 'object'"),
        (url_entry(source="ftp"), "dataset 'ds': source: 'ftp' is not one of"),
        (url_entry(files={"matrix": {"format": "h5ad"}}), "dataset 'ds': files.matrix: 'url' is a required property"),
        (
            url_entry(files={"matrix": {"url": "x", "format": "h5ad"}}),
            "dataset 'ds': files.matrix.url: 'x' is not an http(s) URL",
        ),
        (
            url_entry(files={"matrix": {"url": "https://e.org/a", "format": "h5ad", "sha256": "abc"}}),
            "files.matrix.sha256: 'abc' is not a 64-character hex SHA-256 digest",
        ),
        (url_entry(files={"matrix": {"url": "https://e.org/a", "format": "loom"}}), "files.matrix.format: 'loom'"),
        ({"source": "url", "counts": "matrix"}, "dataset 'ds': 'files' is a required property"),
        ({"source": "local", "path": "x.h5ad"}, "dataset 'ds': 'format' is a required property"),
        (url_entry(colour="red"), "dataset 'ds': Additional properties are not allowed ('colour' was unexpected)"),
        (url_entry(counts="table"), "dataset 'ds': counts: 'table' is not a key of files"),
        (
            url_entry(labels={"file": "ann", "index_column": "barcode", "column": "type"}),
            "dataset 'ds': labels.file: 'ann' is not a key of files",
        ),
        (url_entry(papers=["a"], sections={"b": "Fig 1"}), "dataset 'ds': sections: paper(s) b not listed in papers"),
    ],
)
def test_bad_registry_names_dataset_and_key(tmp_path, entry, expected):
    path = write_registry(tmp_path, {"ds": entry})
    with pytest.raises(ConfigError) as err:
        load_registry(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_bad_dataset_name(tmp_path):
    path = write_registry(tmp_path, {"1bad-name": url_entry()})
    with pytest.raises(ConfigError, match="'1bad-name' is not a valid name"):
        load_registry(path)


def test_registry_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="dataset registry not found"):
        load_registry(write_registry(tmp_path / "a", {"ds": url_entry()}).with_name("other.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML.*line 2"):
        load_registry(write_registry(tmp_path / "b", "ds:\n\tsource: url\n"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "datasets.yaml").write_text(yaml.safe_dump({"ds": url_entry()}))
    with pytest.raises(ConfigError, match="registry schema not found"):
        load_registry(tmp_path / "c" / "datasets.yaml")
    with pytest.raises(ConfigError, match="is not of type 'object'"):
        load_registry(write_registry(tmp_path / "d", "- just a list\n"))


# --------------------------------------------------------------------------------------------- round trip


@pytest.fixture
def http_server():
    """A loopback file server (see tests/http_fixtures.py), stopped after the test."""
    with serve() as server:
        yield server


def tar_of_10x_folder(tmp_path: Path) -> bytes:
    folder = tmp_path / "src" / "filtered_matrices_mex" / "hg19"
    folder.mkdir(parents=True)
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(COUNTS.T))
    (folder / "genes.tsv").write_text("".join(f"ENSG{i}\t{g}\n" for i, g in enumerate(GENES)))
    (folder / "barcodes.tsv").write_text("".join(f"{c}\n" for c in CELLS))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder.parent, arcname="filtered_matrices_mex")
    return buf.getvalue()


def served_spec(server, tmp_path: Path, *, label_rows: str, matrix_sha: str | None = None) -> dict:
    matrix_url = server.add("/10x/pbmc_filtered_gene_bc_matrices.tar.gz", tar_of_10x_folder(tmp_path))
    labels_url = server.add("/raw/68k_pbmc_barcodes_annotation.tsv", label_rows.encode())
    folder = tmp_path / "config"
    path = write_registry(
        folder,
        {
            "fake": url_entry(
                files={
                    "matrix": {"url": matrix_url, "format": "10x_mtx_tar", "sha256": matrix_sha},
                    "annotation": {"url": labels_url, "format": "tsv"},
                },
                labels={"file": "annotation", "index_column": "barcodes", "column": "celltype"},
                label_key="cell_type",
            )
        },
    )
    return get_dataset(load_registry(path), "fake")


LABELS = "TSNE.1\tTSNE.2\tbarcodes\tcelltype\n1\t2\tAAAC-1\tCD8+ T\n3\t4\tAAAT-1\tCD14+ Monocyte\n5\t6\tOTHER-1\tB\n"


def test_fetch_and_load_url_dataset(http_server, tmp_path, caplog):
    spec = served_spec(http_server, tmp_path, label_rows=LABELS)
    dest = tmp_path / "resources" / "fake"
    with caplog.at_level(logging.WARNING, logger="scsynth_core.data.registry"):
        paths = fetch_dataset_files("fake", spec, dest, progress=False)

    assert paths == {
        "matrix": dest / "pbmc_filtered_gene_bc_matrices.tar.gz",
        "annotation": dest / "68k_pbmc_barcodes_annotation.tsv",
    }
    manifest = json.loads((dest / "manifest.json").read_text())
    for key, path in paths.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert (dest / f"{path.name}.sha256").read_text().split() == [digest, path.name]
        assert manifest[key] == {"path": str(path), "url": spec["files"][key]["url"], "sha256": digest, "pinned": False}
    unpinned = [r.getMessage() for r in caplog.records if "no pinned sha256" in r.getMessage()]
    assert len(unpinned) == 2 and "dataset 'fake'" in unpinned[0]
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [*[p.name for p in paths.values()], *[f"{p.name}.sha256" for p in paths.values()], "manifest.json"]
    )

    moved = shutil.move(dest, tmp_path / "moved")  # the manifest finds its files by name beside it
    adata = load_raw_dataset("fake", spec, files=read_manifest(Path(moved) / "manifest.json"))
    assert isinstance(adata.X, sp.csr_matrix) and adata.X.dtype in (np.float32, np.int32)
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)
    assert list(adata.var_names) == GENES and list(adata.obs_names) == CELLS
    labels = adata.obs["cell_type"]
    assert labels.iloc[0] == "CD8+ T" and labels.iloc[2] == "CD14+ Monocyte"
    assert pd.isna(labels.iloc[1])  # AAAG-1 has no row in the label table
    source = adata.uns["scsynth_source"]
    assert source["dataset"] == "fake" and source["source"] == "url"
    assert source["files"]["matrix"]["sha256"] == manifest["matrix"]["sha256"]
    assert source["files"]["annotation"]["url"] == spec["files"]["annotation"]["url"]
    write_h5ad(tmp_path / "raw.h5ad", adata)  # what the import step stores
    back = ad.read_h5ad(tmp_path / "raw.h5ad")
    assert back.uns["scsynth_source"]["files"]["matrix"]["sha256"] == manifest["matrix"]["sha256"]
    assert back.obs["cell_type"].isna().sum() == 1


def test_labels_without_any_match_name_both_files(http_server, tmp_path):
    spec = served_spec(http_server, tmp_path, label_rows="barcodes\tcelltype\nXXXX-1\tB\n")
    paths = fetch_dataset_files("fake", spec, tmp_path / "dl", progress=False)
    with pytest.raises(
        DataError, match="no cell of .*pbmc_filtered_gene_bc_matrices.tar.gz.*68k_pbmc_barcodes_annotation.tsv"
    ):
        load_raw_dataset("fake", spec, files=paths)


def test_missing_label_column_is_named(http_server, tmp_path):
    spec = served_spec(http_server, tmp_path, label_rows="barcodes\ttype\nAAAC-1\tB\n")
    paths = fetch_dataset_files("fake", spec, tmp_path / "dl", progress=False)
    with pytest.raises(DataError, match="column\\(s\\) celltype not found \\(available: barcodes, type\\)"):
        load_raw_dataset("fake", spec, files=paths)


def test_pinned_digest_mismatch_fails_without_manifest(http_server, tmp_path):
    spec = served_spec(http_server, tmp_path, label_rows=LABELS, matrix_sha="a" * 64)
    dest = tmp_path / "dl"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_dataset_files("fake", spec, dest, progress=False)
    assert not (dest / "manifest.json").exists()
    assert not list(dest.glob("*.tar.gz*"))


def test_url_dataset_needs_paths(http_server, tmp_path):
    spec = served_spec(http_server, tmp_path, label_rows=LABELS)
    with pytest.raises(ConfigError, match="run fetch_dataset_files first"):
        load_raw_dataset("fake", spec)
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nowhere" / "manifest.json")


# --------------------------------------------------------------------------------------------- local and bundled


def local_spec(path: str, fmt: str = "csv", **extra) -> dict:
    return {"source": "local", "path": path, "format": fmt, "options": {}, "label_key": None, **extra}


def test_local_dataset_relative_to_base_dir(tmp_path):
    frame = pd.DataFrame(COUNTS.T, index=GENES, columns=CELLS)
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "counts.csv")
    adata = load_raw_dataset("mine", local_spec("data/counts.csv"), base_dir=tmp_path)
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)
    record = adata.uns["scsynth_source"]["files"]["data"]
    assert record["sha256"] == hashlib.sha256((tmp_path / "data" / "counts.csv").read_bytes()).hexdigest()


def test_non_integer_counts_name_the_dataset(tmp_path):
    frame = pd.DataFrame(COUNTS.T + 0.5, index=GENES, columns=CELLS)
    frame.to_csv(tmp_path / "norm.csv")
    with pytest.raises(DataError, match="dataset 'normed'.*not integer"):
        load_raw_dataset("normed", local_spec("norm.csv"), base_dir=tmp_path)


def test_missing_label_key_is_reported(tmp_path):
    pd.DataFrame(COUNTS.T, index=GENES, columns=CELLS).to_csv(tmp_path / "c.csv")
    with pytest.raises(DataError, match="label_key 'cell_type' is not an obs column"):
        load_raw_dataset("mine", local_spec("c.csv", label_key="cell_type"), base_dir=tmp_path)


def test_bundled_dataset(monkeypatch):
    def fake():
        obs = pd.DataFrame({"bulk_labels": ["a", "b", "a"]}, index=CELLS)
        with warnings.catch_warnings():  # duplicate gene names on purpose
            warnings.simplefilter("ignore", UserWarning)
            return ad.AnnData(X=COUNTS.astype(np.float64), obs=obs, var=pd.DataFrame(index=["G", "G", "H", "I"]))

    module = types.ModuleType("scsynth_core.data.bundled")
    module.BUNDLED = {"fake68k": fake}
    monkeypatch.setitem(sys.modules, "scsynth_core.data.bundled", module)
    spec = {"source": "bundled", "bundled": "fake68k", "label_key": "bulk_labels"}
    adata = load_raw_dataset("demo", spec)
    assert isinstance(adata.X, sp.csr_matrix) and adata.X.dtype == np.float32
    assert list(adata.var_names) == ["G", "G-1", "H", "I"]
    assert adata.uns["scsynth_source"] == {"dataset": "demo", "source": "bundled", "bundled": "fake68k"}
    with pytest.raises(ConfigError, match="'missing' is not a bundled dataset \\(known: fake68k\\)"):
        load_raw_dataset("demo", {**spec, "bundled": "missing"})
    with pytest.raises(ConfigError, match="only 'url' datasets"):
        fetch_dataset_files("demo", spec, "unused")


def test_embedded_default_loads(registry):
    pytest.importorskip("scsynth_core.data.bundled")
    adata = load_raw_dataset("pbmc68k_demo", registry["pbmc68k_demo"])
    assert adata.n_obs == 700 and adata.n_vars > 0
    assert isinstance(adata.X, sp.csr_matrix) and adata.X.dtype in (np.float32, np.int32)
    assert adata.obs["bulk_labels"].notna().all()
    assert adata.uns["scsynth_source"]["bundled"] == "pbmc68k_reduced"
