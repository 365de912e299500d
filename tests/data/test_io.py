"""Readers: tiny fixture files in each real layout, read back to known counts; atomic output (``atomic``)."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from scsynth_core import atomic
from scsynth_core.data import io as sio
from scsynth_core.data.io import (
    FORMATS,
    read_10x_h5,
    read_10x_mtx,
    read_count_table,
    read_dataset_file,
    read_linnarsson_txt,
    read_paul15_h5,
    read_sciplex_umi_triplets,
    read_segerstolpe_txt,
    read_tabula_muris_facs_zip,
)
from scsynth_core.errors import ConfigError, DataError

# cells x genes, known answer shared by most fixtures
COUNTS = np.array(
    [
        [0, 3, 0, 1],
        [2, 0, 0, 0],
        [0, 0, 7, 1],
    ],
    dtype=np.int64,
)
CELLS = ["AAAC-1", "AAAG-1", "AAAT-1"]
GENE_IDS = ["ENSG01", "ENSG02", "ENSG03", "ENSG04"]
SYMBOLS = ["CD3E", "MS4A1", "CD3E", "LYZ"]  # a duplicated symbol, as in real 10x data
UNIQUE = ["CD3E", "MS4A1", "CD3E-1", "LYZ"]

PBMC3K = Path("/work/shared/data/pbmc3k/pbmc3k.h5ad")


def assert_counts(adata: ad.AnnData, expected: np.ndarray = COUNTS) -> None:
    assert isinstance(adata.X, sp.csr_matrix)
    assert adata.X.dtype in (np.float32, np.int32)
    assert adata.var_names.is_unique
    np.testing.assert_array_equal(adata.X.toarray(), expected)


def gz_write(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode()))


# --------------------------------------------------------------------------------------------- 10x


def write_mtx_v2(folder: Path) -> Path:
    folder.mkdir(parents=True)
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(COUNTS.T))  # 10x stores genes x cells
    (folder / "genes.tsv").write_text("".join(f"{i}\t{s}\n" for i, s in zip(GENE_IDS, SYMBOLS)))
    (folder / "barcodes.tsv").write_text("".join(f"{c}\n" for c in CELLS))
    return folder


def write_mtx_v3(folder: Path, *, prefix: str = "") -> Path:
    folder.mkdir(parents=True)
    # a fifth feature of another type, dropped by the gene-expression filter
    genes_x_cells = np.vstack([COUNTS.T, [[9, 9, 9]]])
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, sp.coo_matrix(genes_x_cells))
    (folder / f"{prefix}matrix.mtx.gz").write_bytes(gzip.compress(buf.getvalue()))
    rows = [f"{i}\t{s}\tGene Expression\n" for i, s in zip(GENE_IDS, SYMBOLS)] + [
        "AB01\tCD3_TotalSeq\tAntibody Capture\n"
    ]
    gz_write(folder / f"{prefix}features.tsv.gz", "".join(rows))
    gz_write(folder / f"{prefix}barcodes.tsv.gz", "".join(f"{c}\n" for c in CELLS))
    return folder


def test_read_10x_mtx_v2(tmp_path):
    adata = read_10x_mtx(write_mtx_v2(tmp_path / "hg19"))
    assert_counts(adata)
    assert list(adata.obs_names) == CELLS
    assert list(adata.var_names) == UNIQUE
    assert list(adata.var["gene_ids"]) == GENE_IDS


def test_read_10x_mtx_v3_keeps_gene_expression_only(tmp_path):
    adata = read_10x_mtx(write_mtx_v3(tmp_path / "filtered_feature_bc_matrix"))
    assert_counts(adata)
    assert list(adata.var_names) == UNIQUE


def test_read_10x_mtx_finds_nested_and_prefixed_folder(tmp_path):
    write_mtx_v2(tmp_path / "extracted" / "filtered_matrices_mex" / "hg19")
    assert_counts(read_10x_mtx(tmp_path / "extracted"))
    write_mtx_v3(tmp_path / "geo", prefix="GSM1_")
    assert_counts(read_10x_mtx(tmp_path / "geo"))


def test_read_10x_mtx_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no 10x matrix folder"):
        read_10x_mtx(tmp_path / "empty")
    write_mtx_v2(tmp_path / "two" / "a")
    write_mtx_v2(tmp_path / "two" / "b")
    with pytest.raises(DataError, match="several 10x matrix folders"):
        read_10x_mtx(tmp_path / "two")
    assert_counts(read_10x_mtx(tmp_path / "two", subdir="b"))
    broken = write_mtx_v2(tmp_path / "broken")
    (broken / "matrix.mtx").write_text("%%MatrixMarket nonsense\n")
    with pytest.raises(DataError, match="broken"):
        read_10x_mtx(broken)


def test_read_10x_mtx_tar(tmp_path):
    folder = write_mtx_v2(tmp_path / "src" / "filtered_matrices_mex" / "hg19")
    archive = tmp_path / "pbmc.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder.parent, arcname="filtered_matrices_mex")
    adata = read_dataset_file(archive, "10x_mtx_tar")
    assert_counts(adata)
    assert list(adata.obs_names) == CELLS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pbmc.tar.gz", "src"]  # temporary extraction removed


def write_h5_v3(path: Path) -> Path:
    csc = sp.csc_matrix(COUNTS.T.astype(np.int32))  # genes x cells, stored column (cell) wise
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["data"], m["indices"], m["indptr"] = csc.data, csc.indices, csc.indptr
        m["shape"] = np.array(csc.shape, dtype=np.int32)
        m["barcodes"] = np.array(CELLS, dtype="S")
        feats = m.create_group("features")
        feats["id"] = np.array(GENE_IDS, dtype="S")
        feats["name"] = np.array(SYMBOLS, dtype="S")
        feats["feature_type"] = np.array(["Gene Expression"] * 4, dtype="S")
        feats["genome"] = np.array(["GRCh38"] * 4, dtype="S")
        feats["_all_tag_keys"] = np.array(["genome"], dtype="S")
    return path


def write_h5_legacy(path: Path, genome: str = "mm10") -> Path:
    csc = sp.csc_matrix(COUNTS.T.astype(np.int32))
    with h5py.File(path, "w") as f:
        g = f.create_group(genome)
        g["data"], g["indices"], g["indptr"] = csc.data, csc.indices, csc.indptr
        g["shape"] = np.array(csc.shape, dtype=np.int32)
        g["barcodes"] = np.array(CELLS, dtype="S")
        g["genes"] = np.array(GENE_IDS, dtype="S")
        g["gene_names"] = np.array(SYMBOLS, dtype="S")
    return path


def test_read_10x_h5_v3_and_legacy(tmp_path):
    v3 = read_dataset_file(write_h5_v3(tmp_path / "v3.h5"), "10x_h5")
    assert_counts(v3)
    assert list(v3.var_names) == UNIQUE and list(v3.obs_names) == CELLS
    legacy = read_10x_h5(write_h5_legacy(tmp_path / "legacy.h5"), genome="mm10")
    assert_counts(legacy)
    assert list(legacy.var["gene_ids"]) == GENE_IDS
    with pytest.raises(DataError, match="legacy.h5"):
        read_10x_h5(tmp_path / "legacy.h5", genome="hg19")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="junk.h5"):
        read_10x_h5(tmp_path / "junk.h5")


# --------------------------------------------------------------------------------------------- text tables


def table_text(sep: str, orientation: str, *, corner: bool = True) -> str:
    matrix = COUNTS.T if orientation == "genes_x_cells" else COUNTS
    rows, cols = (GENE_IDS, CELLS) if orientation == "genes_x_cells" else (CELLS, GENE_IDS)
    header = (['"gene"'] if corner else []) + [f'"{c}"' for c in cols]
    lines = [sep.join(header)] + [sep.join([f'"{r}"', *map(str, row)]) for r, row in zip(rows, matrix)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "fmt", "orientation", "corner"),
    [
        ("counts.csv", "csv", "genes_x_cells", True),
        ("counts.csv.gz", "csv", "cells_x_genes", True),
        ("counts.tsv", "tsv", "cells_x_genes", False),  # R write.table header without a corner label
        ("counts.txt.gz", "tsv", "genes_x_cells", True),
    ],
)
def test_read_count_table(tmp_path, monkeypatch, name, fmt, orientation, corner):
    monkeypatch.setattr(sio, "CHUNK_VALUES", 4)  # several row chunks even for a tiny table
    sep = "," if fmt == "csv" else "\t"
    text = table_text(sep, orientation, corner=corner)
    path = tmp_path / name
    if name.endswith(".gz"):
        gz_write(path, text)
    else:
        path.write_text(text)
    adata = read_dataset_file(path, fmt, orientation=orientation)
    assert_counts(adata)
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == GENE_IDS
    assert_counts(read_count_table(path, orientation=orientation))  # separator inferred from the name


def test_count_table_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("gene,c1,c2\ng1,1,2\ng2,3,abc\n")
    with pytest.raises(DataError, match="bad.csv.*non-numeric") as err:
        read_count_table(bad)
    assert "\n" not in str(err.value)
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("gene\tc1\tc2\tc3\tc4\ng1\t1\t2\n")
    with pytest.raises(DataError, match="ragged.tsv: header has 5 fields"):
        read_count_table(ragged)
    with pytest.raises(DataError, match="file not found"):
        read_count_table(tmp_path / "missing.csv")
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="corrupt.csv.gz: not a readable"):
        read_count_table(corrupt)
    good = tmp_path / "good.csv"
    good.write_text("gene,c1\ng1,1\n")
    with pytest.raises(ConfigError, match="orientation"):
        read_count_table(good, orientation="sideways")


# --------------------------------------------------------------------------------------------- dataset layouts


def test_read_linnarsson_txt(tmp_path):
    meta = {
        "tissue": ["sscortex", "ca1hippocampus", "sscortex"],
        "group #": ["1", "2", "1"],
        "total mRNA mol": ["21580", "21748", "31642"],
        "well": ["11", "95", "33"],
        "sex": ["1", "-1", "-1"],
        "age": ["21", "20", "20"],
        "diameter": ["0", "9.56", "11.1"],
        "cell_id": CELLS,
        "level1class": ["interneurons", "pyramidal CA1", "interneurons"],
        "level2class": ["Int10", "CA1Pyr1", "Int2"],
    }
    lines = ["\t".join(["", name, *values]) for name, values in meta.items()]
    lines.append("\t".join(["", "", *[""] * 3]))  # the separator line the layout skips
    lines += ["\t".join([gene, "42", *map(str, row)]) for gene, row in zip(GENE_IDS, COUNTS.T)]
    path = tmp_path / "expression_mRNA_17-Aug-2014.txt"
    path.write_text("\n".join(lines) + "\n")
    adata = read_dataset_file(path, "linnarsson_txt")
    assert_counts(adata)
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == GENE_IDS
    assert list(adata.obs["level1class"]) == meta["level1class"]
    np.testing.assert_allclose(adata.obs["diameter"], [0, 9.56, 11.1])
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[:4]) + "\n")
    with pytest.raises(DataError, match="fewer than 10 metadata lines"):
        read_linnarsson_txt(short)


def segerstolpe_text() -> str:
    rpkm = COUNTS.T * 10.5
    header = "\t".join(["#samples", *CELLS])
    rows = [
        "\t".join([sym, f"NM_{i:05d}", *map(str, r), *map(str, c)])
        for i, (sym, r, c) in enumerate(zip(SYMBOLS, rpkm, COUNTS.T))
    ]
    return "\n".join([header, *rows]) + "\n"


def test_read_segerstolpe_txt_and_zip(tmp_path):
    txt = tmp_path / "pancreas_refseq_rpkms_counts_3514sc.txt"
    txt.write_text(segerstolpe_text())
    adata = read_segerstolpe_txt(txt)
    assert_counts(adata)
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == UNIQUE
    np.testing.assert_allclose(read_segerstolpe_txt(txt, values="rpkm").X.toarray(), COUNTS * 10.5)
    archive = tmp_path / "E-MTAB-5061.processed.1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(txt, txt.name)
    assert_counts(read_dataset_file(archive, "segerstolpe_txt", values="counts"))
    bad = tmp_path / "bad.txt"
    bad.write_text("#samples\ta\tb\ng1\tNM_1\t1\t2\t3\n")
    with pytest.raises(DataError, match="2 \\+ 2N fields"):
        read_segerstolpe_txt(bad)


def test_read_tabula_muris_facs_zip(tmp_path):
    archive = tmp_path / "FACS.zip"
    heart = pd.DataFrame(COUNTS[:2].T, index=GENE_IDS, columns=["A1.B1.3_39_F.1.1", "A2.B1.3_39_F.1.1"])
    liver = pd.DataFrame(COUNTS[2:].T, index=GENE_IDS, columns=["C1.B2.3_8_M.1.1"])
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("FACS/Heart-counts.csv", heart.to_csv())
        zf.writestr("FACS/Liver-counts.csv", liver.to_csv())
        zf.writestr("__MACOSX/FACS/._Heart-counts.csv", "junk")
    adata = read_dataset_file(archive, "tabula_muris_facs_zip")
    assert_counts(adata)
    assert list(adata.obs["tissue"]) == ["Heart", "Heart", "Liver"]
    only = read_tabula_muris_facs_zip(archive, tissues=["Heart"])
    assert_counts(only, COUNTS[:2])
    with pytest.raises(ConfigError, match="Brain.*available: Heart, Liver"):
        read_tabula_muris_facs_zip(archive, tissues=["Brain"])


def write_sciplex(tmp_path: Path, *, shift: int = 0) -> tuple[Path, Path, Path]:
    genes_x_cells = sp.coo_matrix(COUNTS.T)
    triplets = "".join(
        f"{g + 1 + shift}\t{c + 1}\t{v}\n" for g, c, v in zip(genes_x_cells.row, genes_x_cells.col, genes_x_cells.data)
    )
    matrix = tmp_path / "UMI.count.matrix.gz"
    gz_write(matrix, triplets)
    cells = tmp_path / "cell.annotations.txt.gz"
    gz_write(cells, "".join(f"{c}\tA549_24hrs\n" for c in CELLS))
    genes = tmp_path / "gene.annotations.txt.gz"
    gz_write(genes, "id gene_short_name\n" + "".join(f"{i} {s}\n" for i, s in zip(GENE_IDS, SYMBOLS)))
    return matrix, cells, genes


def test_read_sciplex_umi_triplets(tmp_path, monkeypatch):
    monkeypatch.setattr(sio, "CHUNK_VALUES", 2)
    matrix, cells, genes = write_sciplex(tmp_path)
    adata = read_dataset_file(matrix, "sciplex_umi_triplets", cells_file=cells, genes_file=genes)
    assert_counts(adata)
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == UNIQUE
    assert list(adata.var["gene_id"]) == GENE_IDS
    assert set(adata.obs["sample"]) == {"A549_24hrs"}
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    matrix, cells, genes = write_sciplex(bad_dir, shift=1)
    with pytest.raises(DataError, match="gene index .* outside 1..4"):
        read_sciplex_umi_triplets(matrix, cells_file=cells, genes_file=genes)


def test_read_paul15_h5(tmp_path):
    path = tmp_path / "paul15.h5"
    with h5py.File(path, "w") as f:
        f["data.debatched"] = COUNTS.T.astype(np.float64)  # genes x cells, dense, as hosted
        f["data.debatched_rownames"] = np.array([f"{s};alias{i}" for i, s in enumerate(SYMBOLS)], dtype="S")
        f["data.debatched_colnames"] = np.array(CELLS, dtype="S")
        f["cluster.id"] = np.array([[7], [1], [19]])
    adata = read_paul15_h5(path, chunk_genes=3)
    assert_counts(adata)
    assert list(adata.var_names) == UNIQUE
    assert list(adata.obs["paul15_clusters"]) == ["7MEP", "1Ery", "19Lymph"]
    with h5py.File(path, "a") as f:
        del f["cluster.id"]
        f["cluster.id"] = np.array([[7], [1], [20]])
    with pytest.raises(DataError, match="cluster.id"):
        read_paul15_h5(path)


# --------------------------------------------------------------------------------------------- h5ad and dispatch


def test_read_h5ad_with_layer(tmp_path):
    adata = ad.AnnData(
        X=np.log1p(COUNTS).astype(np.float32),
        obs=pd.DataFrame(index=CELLS),
        var=pd.DataFrame(index=GENE_IDS),
        layers={"spliced": sp.csr_matrix(COUNTS)},
    )
    path = tmp_path / "x.h5ad"
    adata.write_h5ad(path)
    read = read_dataset_file(path, "h5ad", layer="spliced")
    assert_counts(read)
    with pytest.raises(DataError, match="layer 'unspliced' not found \\(available: spliced\\)"):
        read_dataset_file(path, "h5ad", layer="unspliced")


def test_dispatch_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown data format 'loom'.*known: h5ad, 10x_h5"):
        read_dataset_file(tmp_path / "x.loom", "loom")
    with pytest.raises(ConfigError, match="does not accept options"):
        read_dataset_file(tmp_path / "x.h5ad", "h5ad", orientation="cells_x_genes")
    with pytest.raises(DataError, match="x.h5ad: file not found"):
        read_dataset_file(tmp_path / "x.h5ad", "h5ad")
    corrupt = tmp_path / "corrupt.h5ad"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupt.h5ad"):
        read_dataset_file(corrupt, "h5ad")
    assert set(FORMATS) >= {"h5ad", "10x_h5", "10x_mtx", "10x_mtx_tar", "csv", "tsv"}


@pytest.mark.skipif(not PBMC3K.is_file(), reason="shared pbmc3k data not present")
def test_read_real_pbmc3k():
    adata = read_dataset_file(PBMC3K, "h5ad")
    assert adata.shape == (2700, 32738)
    assert isinstance(adata.X, sp.csr_matrix) and adata.X.dtype in (np.float32, np.int32)
    assert adata.var_names.is_unique
    assert adata.X.data.min() >= 1 and np.all(adata.X.data == np.round(adata.X.data))
    assert "seurat_annotation" in adata.obs


# --------------------------------------------------------------------------------------------- atomic output


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_output_gets_the_permissions_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic.write_text(tmp_path / "out.tsv", "a\n")
        with atomic.atomic_path(tmp_path / "model.pt") as tmp, open(tmp, "wb") as handle:  # how torch.save writes
            handle.write(b"x")
    finally:
        os.umask(old)
    for name in ("out.tsv", "model.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    # A real writer killed with SIGKILL inside atomic_path, once for out.tsv and once for another file beside it.
    code = (
        "import os, signal, sys\n"
        "from scsynth_core.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as a, atomic_path(sys.argv[2]) as b:\n"
        "    a.write_text('half'); b.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out, other = tmp_path / "out.tsv", tmp_path / "out.tsv.gz"  # a name that extends the target's
    killed = subprocess.run([sys.executable, "-c", code, str(out), str(other)], check=False)
    assert killed.returncode == -9
    assert len(temps(tmp_path)) == 2
    atomic.write_text(out, "complete\n")
    assert out.read_text() == "complete\n"
    assert [name.startswith(".out.tsv.gz.") for name in temps(tmp_path)] == [True]  # the other target's is kept
    atomic.write_text(other, "x")
    assert temps(tmp_path) == []


def test_temp_files_of_live_or_unknown_writers_are_kept_until_stale(tmp_path):
    target = tmp_path / "out.tsv"
    other_host = f"{int(atomic._HOST_TAG, 16) ^ 1:08x}"  # a tag that is not this host's
    names = {
        "fresh_other_host": f".out.tsv.{other_host}-1.abcd1234.part",
        "old_other_host": f".out.tsv.{other_host}-1.abcd5678.part",
        "fresh_unnamed": ".out.tsv.q1w2e3r4.part",  # tempfile.mkstemp's naming, no writer recorded
        "old_unnamed": ".out.tsv.t5y6u7i8.part",
    }
    day_ago = time.time() - atomic.STALE_AFTER - 60
    for key, name in names.items():
        (tmp_path / name).write_text("partial")
        if key.startswith("old"):
            os.utime(tmp_path / name, (day_ago, day_ago))
    with atomic.atomic_path(target) as live:
        live.write_text("outer")
        os.utime(live, (day_ago, day_ago))  # old, but its writer (this process) still runs
        atomic.write_text(target, "inner")
        assert live.read_text() == "outer"
        assert temps(tmp_path) == sorted([live.name, names["fresh_other_host"], names["fresh_unnamed"]])
    assert target.read_text() == "outer"
