"""Readers that turn public scRNA-seq files into AnnData with raw counts.

Every reader returns an :class:`~anndata.AnnData` with cells as observations, raw counts in ``X`` as a
``scipy.sparse.csr_matrix`` (float32 or int32) and unique ``var_names``. Text tables are parsed in row chunks
and converted to sparse blocks as they are read, so a full dense matrix is never built.

Generic formats (``h5ad``, ``10x_h5``, ``10x_mtx``, ``10x_mtx_tar``, ``csv``, ``tsv``) use scanpy/anndata/pandas.
A few public datasets ship in layouts of their own; each has a small reader whose docstring describes the
layout: ``linnarsson_txt`` (Zeisel et al. 2015), ``segerstolpe_txt`` (E-MTAB-5061), ``tabula_muris_facs_zip``
(Tabula Muris FACS, figshare), ``sciplex_umi_triplets`` (sci-Plex, GSM4150378) and ``paul15_h5`` (Paul et al.
2015 as hosted for scanpy). :func:`read_dataset_file` dispatches on the format name used in the registry.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import inspect
import io
import os
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import anndata as ad

#: Values (not bytes) parsed per chunk of a text table; bounds the dense buffer pandas fills per chunk.
CHUNK_VALUES = 5_000_000

ORIENTATIONS = ("genes_x_cells", "cells_x_genes")

#: Cell-type names of the 19 clusters of Paul et al. 2015 (cluster id -> name), as given in the paper.
PAUL15_CLUSTER_NAMES = {
    **{i: "Ery" for i in range(1, 7)},
    7: "MEP",
    8: "Mk",
    9: "GMP",
    10: "GMP",
    11: "DC",
    12: "Baso",
    13: "Baso",
    14: "Mo",
    15: "Mo",
    16: "Neu",
    17: "Neu",
    18: "Eos",
    19: "Lymph",
}

# Cell Ranger matrix folders: (matrix, features, barcodes) for v2 and v3+.
_MTX_LAYOUTS = (
    ("matrix.mtx", "genes.tsv", "barcodes.tsv"),
    ("matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"),
)

_INT32_MAX = np.iinfo(np.int32).max


# --------------------------------------------------------------------------------------------- helpers


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found (expected {what})")


def counts_anndata(adata: ad.AnnData) -> ad.AnnData:
    """Make ``X`` a CSR matrix of float32 or int32 and ``var_names`` unique (in place; returns ``adata``)."""
    X = adata.X
    X = sp.csr_matrix(X) if sp.issparse(X) else sp.csr_matrix(np.asarray(X))
    if X.dtype not in (np.float32, np.int32):
        fits_int32 = np.issubdtype(X.dtype, np.integer) and (X.nnz == 0 or X.data.max() <= _INT32_MAX)
        X = X.astype(np.int32 if fits_int32 else np.float32)
    adata.X = X
    if not adata.var_names.is_unique:
        adata.var_names_make_unique()
    return adata


def _make_anndata(X: sp.spmatrix, obs_names, var_names, *, obs=None, var=None) -> ad.AnnData:
    import anndata as ad
    from anndata.utils import make_index_unique

    obs_df = pd.DataFrame(obs or {}, index=pd.Index([str(n) for n in obs_names]))
    var_df = pd.DataFrame(var or {}, index=make_index_unique(pd.Index([str(n) for n in var_names])))
    return counts_anndata(ad.AnnData(X=sp.csr_matrix(X), obs=obs_df, var=var_df))


def _open_text(path: Path):
    """Open a plain or gzip-compressed text file for reading."""
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _infer_sep(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".zip"):
        name = name.removesuffix(suffix)
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".tab", ".txt")):
        return "\t"
    with _open_text(path) as handle:
        first = handle.readline()
    return "\t" if "\t" in first else ","


@contextlib.contextmanager
def _text_errors(where: str, what: str) -> Iterator[None]:
    """Turn decoding/decompression/parsing failures into one-line DataErrors naming ``where``."""
    try:
        yield
    except DataError:
        raise
    except (OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{where}: not a readable {what} ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:  # pandas ParserError and failed float conversions are ValueErrors
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{where}: non-numeric or malformed entry in the {what} ({msg})") from None


def _table_layout(opener: Callable, where: str, sep: str) -> tuple[list[str], int]:
    """Column names and the number of fields per data row of a table with a header line.

    The header either names every column (first one = corner label of the row names) or only the value
    columns (R ``write.table`` style, one field shorter than the data rows).
    """
    with opener() as handle:
        reader = csv.reader(handle, delimiter=sep)
        header = next(reader, None)
        first = next(reader, None)
    if not header:
        raise DataError(f"{where}: empty file (expected a header line with column names)")
    if first is None:
        return header[1:], len(header)
    if len(header) == len(first):
        return header[1:], len(first)
    if len(header) == len(first) - 1:
        return header, len(first)
    raise DataError(
        f"{where}: header has {len(header)} fields but the first data row has {len(first)} (separator {sep!r})"
    )


def _read_sparse_rows(
    opener: Callable, where: str, sep: str, value_cols: list[int], *, skiprows: int
) -> tuple[list[str], sp.csr_matrix]:
    """Parse a delimited table whose column 0 holds row names, keeping ``value_cols`` as a sparse matrix.

    Rows are read ``CHUNK_VALUES // len(value_cols)`` at a time; each chunk becomes a CSR block at once.
    """
    chunk_rows = max(1, CHUNK_VALUES // max(1, len(value_cols)))
    dtype = {0: str, **{c: np.float32 for c in value_cols}}
    names: list[str] = []
    blocks: list[sp.csr_matrix] = []
    with _text_errors(where, "count table"), opener() as handle:
        chunks = pd.read_csv(
            handle,
            sep=sep,
            header=None,
            skiprows=skiprows,
            usecols=[0, *value_cols],
            index_col=0,
            dtype=dtype,
            keep_default_na=False,  # a gene called "NA" stays a name; "NA" as a count is an error
            na_values=[""],
            chunksize=chunk_rows,
        )
        for chunk in chunks:
            names.extend(chunk.index.astype(str))
            blocks.append(sp.csr_matrix(chunk.to_numpy(dtype=np.float32)))
    if not blocks:
        return [], sp.csr_matrix((0, len(value_cols)), dtype=np.float32)
    return names, sp.vstack(blocks, format="csr")


def _parse_count_table(opener: Callable, where: str, sep: str, orientation: str) -> ad.AnnData:
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"{where}: orientation must be one of {', '.join(ORIENTATIONS)} (got {orientation!r})")
    with _text_errors(where, "text table"):
        columns, n_fields = _table_layout(opener, where, sep)
    rows, X = _read_sparse_rows(opener, where, sep, list(range(1, n_fields)), skiprows=1)
    if orientation == "genes_x_cells":
        return _make_anndata(X.T, columns, rows)
    return _make_anndata(X, rows, columns)


# --------------------------------------------------------------------------------------------- generic formats


def read_h5ad_counts(path: str | os.PathLike, *, layer: str | None = None) -> ad.AnnData:
    """Read an ``.h5ad`` file, optionally taking the counts from ``layers[layer]``.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        Layer holding the raw counts (e.g. ``"spliced"`` for scVelo data); ``None`` keeps ``X``.
    """
    from scsynth_core.data.checks import read_h5ad

    path = Path(path)
    adata = read_h5ad(path)
    if layer is not None:
        if layer not in adata.layers:
            available = ", ".join(adata.layers.keys()) or "none"
            raise DataError(f"{path}: layer '{layer}' not found (available: {available})")
        adata.X = adata.layers[layer]
    return counts_anndata(adata)


def find_10x_mtx_dir(root: str | os.PathLike) -> tuple[Path, str]:
    """Locate the Cell Ranger matrix folder at or below ``root``.

    Parameters
    ----------
    root
        A matrix folder itself, or a folder holding one somewhere below it (an extracted archive such as
        ``filtered_matrices_mex/hg19/``).

    Returns
    -------
    The folder and the file-name prefix shared by its three files (``""`` for standard names, e.g.
    ``"GSM123_"`` for GEO-style ``GSM123_matrix.mtx.gz``).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a 10x matrix folder)")
    hits: list[tuple[Path, str]] = []
    for mtx, features, barcodes in _MTX_LAYOUTS:
        for path in sorted(root.rglob(f"*{mtx}")):
            if path.name.startswith("._") or "__MACOSX" in path.parts:
                continue
            prefix = path.name[: -len(mtx)]
            folder = path.parent
            if (folder / f"{prefix}{features}").is_file() and (folder / f"{prefix}{barcodes}").is_file():
                hits.append((folder, prefix))
    if not hits:
        raise DataError(
            f"{root}: no 10x matrix folder found (expected matrix.mtx + genes.tsv + barcodes.tsv, "
            "or matrix.mtx.gz + features.tsv.gz + barcodes.tsv.gz)"
        )
    if len(hits) > 1:
        found = ", ".join(str(folder / f"{prefix}*") for folder, prefix in hits)
        raise DataError(f"{root}: several 10x matrix folders found ({found}); pass subdir= to choose one")
    return hits[0]


def read_10x_mtx(folder: str | os.PathLike, *, subdir: str | None = None) -> ad.AnnData:
    """Read a Cell Ranger v2 (``genes.tsv``) or v3+ (``features.tsv.gz``) matrix folder.

    Gene symbols become ``var_names`` (made unique), Ensembl ids are kept in ``var["gene_ids"]``; for v3+ only
    "Gene Expression" features are kept.

    Parameters
    ----------
    folder
        The matrix folder, or a folder containing exactly one matrix folder below it.
    subdir
        Path below ``folder`` to search instead (e.g. ``"filtered_matrices_mex/hg19"``).
    """
    import scanpy as sc

    root = Path(folder) / subdir if subdir else Path(folder)
    _require(root, "a 10x matrix folder")
    mtx_dir, prefix = find_10x_mtx_dir(root)
    try:
        adata = sc.read_10x_mtx(mtx_dir, var_names="gene_symbols", make_unique=True, prefix=prefix or None)
    except Exception as exc:  # noqa: BLE001 - scanpy/scipy/pandas raise many types for damaged files
        raise DataError(f"{mtx_dir}: not a readable 10x matrix folder ({type(exc).__name__}: {exc})") from None
    return counts_anndata(adata)


def read_10x_mtx_tar(path: str | os.PathLike, *, subdir: str | None = None) -> ad.AnnData:
    """Read a tar(.gz) archive holding a 10x matrix folder (extracted to a temporary folder, then removed)."""
    from scsynth_core.data.download import extract_archive

    path = Path(path)
    _require(path, "a tar archive of a 10x matrix folder")
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
        root = extract_archive(path, Path(tmp) / "contents")
        return read_10x_mtx(root, subdir=subdir)


def read_10x_h5(path: str | os.PathLike, *, genome: str | None = None) -> ad.AnnData:
    """Read a Cell Ranger ``.h5`` matrix (legacy v1/v2 per-genome layout or v3+ ``/matrix`` layout).

    Parameters
    ----------
    path
        The ``.h5`` file.
    genome
        Genome group to read (needed for legacy files with several genomes, e.g. ``"mm10"``).
    """
    import scanpy as sc

    path = Path(path)
    _require(path, "a 10x HDF5 matrix")
    try:
        with warnings.catch_warnings():  # scanpy builds the AnnData before names are made unique (done below)
            warnings.filterwarnings("ignore", message="Variable names are not unique", category=UserWarning)
            adata = sc.read_10x_h5(path, genome=genome)
    except Exception as exc:  # noqa: BLE001 - h5py/scanpy raise many types for damaged files; one line each
        raise DataError(f"{path}: not a readable 10x h5 matrix ({type(exc).__name__}: {exc})") from None
    return counts_anndata(adata)


def read_count_table(
    path: str | os.PathLike,
    *,
    orientation: Literal["genes_x_cells", "cells_x_genes"] = "genes_x_cells",
    sep: str | None = None,
) -> ad.AnnData:
    """Read a delimited count table (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``).

    The first column holds the row names and the header line the column names (the header may omit the
    corner label, as R's ``write.table`` does). The table is parsed in row chunks that are made sparse at once.

    Parameters
    ----------
    path
        The table.
    orientation
        ``"genes_x_cells"`` (rows are genes, the usual GEO layout) or ``"cells_x_genes"``.
    sep
        Field separator; inferred from the extension when ``None`` (``.csv`` -> comma, else tab).

    Raises
    ------
    DataError
        Missing file, ragged rows, or a non-numeric value (the message names the file).
    """
    path = Path(path)
    _require(path, "a count table")
    sep = sep or _infer_sep(path)
    return _parse_count_table(functools.partial(_open_text, path), str(path), sep, orientation)


# --------------------------------------------------------------------------------------------- dataset layouts


def read_linnarsson_txt(path: str | os.PathLike) -> ad.AnnData:
    """Read the Linnarsson-lab text layout of Zeisel et al. 2015 (``expression_mRNA_17-Aug-2014.txt``).

    Layout (tab-separated): 10 metadata lines whose first field is empty, second field the attribute name
    (``tissue``, ``group #``, ``total mRNA mol``, ``well``, ``sex``, ``age``, ``diameter``, ``cell_id``,
    ``level1class``, ``level2class``) and the remaining fields one value per cell; one further line (skipped);
    then one line per gene: gene name, a cluster-number field (ignored), one count per cell.

    Returns
    -------
    Cells named by ``cell_id``; every other metadata attribute becomes an ``obs`` column (numeric where
    possible), so ``obs["level1class"]`` holds the published cell classes.
    """
    path = Path(path)
    _require(path, "the Linnarsson-lab expression text file")
    where = str(path)
    opener = functools.partial(_open_text, path)
    with _text_errors(where, "Linnarsson-lab text file"), opener() as handle:
        reader = csv.reader(handle, delimiter="\t")
        meta_rows = [next(reader, None) for _ in range(10)]
    if any(row is None or len(row) < 3 for row in meta_rows):
        raise DataError(f"{where}: fewer than 10 metadata lines (expected the Zeisel 2015 Linnarsson-lab layout)")
    meta = {row[1].strip(): row[2:] for row in meta_rows}
    if "cell_id" not in meta:
        raise DataError(f"{where}: no 'cell_id' metadata line among the first 10 (got {', '.join(meta)})")
    n_cells = len(meta["cell_id"])
    ragged = [name for name, values in meta.items() if len(values) != n_cells]
    if ragged:
        raise DataError(f"{where}: metadata line(s) {', '.join(ragged)} do not have {n_cells} values")
    genes, X = _read_sparse_rows(opener, where, "\t", list(range(2, n_cells + 2)), skiprows=11)
    obs = {name: _maybe_numeric(values) for name, values in meta.items() if name != "cell_id"}
    return _make_anndata(X.T, meta["cell_id"], genes, obs=obs)


def _maybe_numeric(values: list[str]) -> pd.Series | list[str]:
    try:
        return pd.to_numeric(pd.Series(values)).to_numpy()
    except (ValueError, TypeError):
        return values


def _single_text_member(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n]
    texts = [n for n in names if n.lower().endswith((".txt", ".tsv"))]
    if len(texts) != 1:
        raise DataError(f"{path}: expected exactly one .txt table in the zip archive (found: {', '.join(names)})")
    return texts[0]


@contextlib.contextmanager
def _zip_member_text(path: Path, member: str):
    with zipfile.ZipFile(path) as zf, zf.open(member) as raw:
        yield io.TextIOWrapper(raw, encoding="utf-8", newline="")


def read_segerstolpe_txt(path: str | os.PathLike, *, values: Literal["counts", "rpkm"] = "counts") -> ad.AnnData:
    """Read Segerstolpe et al. 2016 (ArrayExpress E-MTAB-5061) ``pancreas_refseq_rpkms_counts_3514sc.txt``.

    Layout (tab-separated): a header ``#samples`` followed by the N cell names; then one line per gene: gene
    symbol, RefSeq accession, N RPKM values, N read counts (2 + 2N fields). The file may be given as is or
    inside the ``E-MTAB-5061.processed.1.zip`` archive ArrayExpress distributes.

    Parameters
    ----------
    path
        The ``.txt`` file or the ``.zip`` holding it.
    values
        ``"counts"`` (the last N columns, default) or ``"rpkm"``.
    """
    path = Path(path)
    _require(path, "the E-MTAB-5061 rpkm/counts table")
    where = str(path)
    if values not in ("counts", "rpkm"):
        raise ConfigError(f"{where}: values must be 'counts' or 'rpkm' (got {values!r})")
    with _text_errors(where, "E-MTAB-5061 table"):
        if path.name.lower().endswith(".zip"):
            member = _single_text_member(path)
            opener = functools.partial(_zip_member_text, path, member)
            where = f"{path}:{member}"
        else:
            opener = functools.partial(_open_text, path)
        with opener() as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None) or []
            first = next(reader, None) or []
    cells = header[1:]
    n = len(cells)
    if n == 0 or len(first) != 2 + 2 * n:
        raise DataError(
            f"{where}: expected a '#samples' header with N cell names and gene rows of 2 + 2N fields "
            f"(got {n} names and {len(first)} fields)"
        )
    start = 2 + n if values == "counts" else 2
    genes, X = _read_sparse_rows(opener, where, "\t", list(range(start, start + n)), skiprows=1)
    return _make_anndata(X.T, cells, genes)


def read_tabula_muris_facs_zip(path: str | os.PathLike, *, tissues: list[str] | None = None) -> ad.AnnData:
    """Read the Tabula Muris FACS (Smart-seq2) archive ``FACS.zip`` from figshare.

    Layout: one comma-separated table per tissue, ``FACS/<Tissue>-counts.csv``, genes x cells, first column
    the gene names, header the cell names; every table lists the same genes in the same order.

    Parameters
    ----------
    path
        The zip archive.
    tissues
        Tissue names to read (e.g. ``["Heart"]``); all when ``None``.

    Returns
    -------
    Cells of the chosen tissues stacked, with ``obs["tissue"]``.
    """
    path = Path(path)
    _require(path, "the Tabula Muris FACS zip archive")
    suffix = "-counts.csv"
    with _text_errors(str(path), "Tabula Muris zip archive"), zipfile.ZipFile(path) as zf:
        members = {
            PurePosixPath(n).name[: -len(suffix)]: n
            for n in zf.namelist()
            if n.endswith(suffix) and "__MACOSX" not in n and not PurePosixPath(n).name.startswith("._")
        }
    if not members:
        raise DataError(f"{path}: no '<Tissue>-counts.csv' tables in the archive")
    chosen = sorted(members) if tissues is None else list(tissues)
    missing = [t for t in chosen if t not in members]
    if missing:
        raise ConfigError(
            f"{path}: tissue(s) {', '.join(missing)} not in the archive (available: {', '.join(sorted(members))})"
        )
    blocks, cells, tissue_of_cell = [], [], []
    genes: list[str] | None = None
    for tissue in chosen:
        where = f"{path}:{members[tissue]}"
        opener = functools.partial(_zip_member_text, path, members[tissue])
        with _text_errors(where, "count table"):
            columns, n_fields = _table_layout(opener, where, ",")
        rows, X = _read_sparse_rows(opener, where, ",", list(range(1, n_fields)), skiprows=1)
        if genes is None:
            genes = rows
        elif rows != genes:
            raise DataError(f"{where}: gene list differs from the first table's; cannot stack tissues")
        blocks.append(X.T.tocsr())
        cells.extend(columns)
        tissue_of_cell.extend([tissue] * len(columns))
    X = sp.vstack(blocks, format="csr")
    return _make_anndata(X, cells, genes, obs={"tissue": pd.Categorical(tissue_of_cell)})


def read_sciplex_umi_triplets(
    path: str | os.PathLike, *, cells_file: str | os.PathLike, genes_file: str | os.PathLike
) -> ad.AnnData:
    """Read the sci-Plex UMI matrix of GEO sample GSM4150378 (Srivatsan et al. 2020).

    Layout: ``..._UMI.count.matrix.gz`` holds one tab-separated triplet per non-zero, ``gene_index cell_index
    count``, both 1-based and without a header; ``..._cell.annotations.txt.gz`` lists the cells in index order
    (tab-separated, no header: cell name, sample); ``..._gene.annotations.txt.gz`` lists the genes in index
    order (whitespace-separated, header ``id gene_short_name``: Ensembl id, symbol).

    Parameters
    ----------
    path
        The triplet file.
    cells_file, genes_file
        The cell and gene annotation files.

    Returns
    -------
    Cells named as in the annotation (``obs["sample"]`` when given), genes by symbol (made unique) with
    ``var["gene_id"]``.
    """
    path, cells_file, genes_file = Path(path), Path(cells_file), Path(genes_file)
    for p, what in (
        (path, "the sci-Plex UMI triplet matrix"),
        (cells_file, "cell annotations"),
        (genes_file, "gene annotations"),
    ):
        _require(p, what)
    with _text_errors(str(cells_file), "cell annotation table"):
        cells = pd.read_csv(cells_file, sep="\t", header=None, dtype=str)
    with _text_errors(str(genes_file), "gene annotation table"):
        genes = pd.read_csv(genes_file, sep=r"\s+", header=None, dtype=str)
    if len(genes) and str(genes.iat[0, 0]).lower() == "id":
        genes = genes.iloc[1:].reset_index(drop=True)
    if genes.shape[1] < 2:
        raise DataError(f"{genes_file}: expected two columns (id, gene_short_name)")
    n_cells, n_genes = len(cells), len(genes)
    gene_idx, cell_idx, counts = [], [], []
    with _text_errors(str(path), "UMI triplet matrix"):
        chunks = pd.read_csv(
            path,
            sep="\t",
            header=None,
            names=["gene", "cell", "count"],
            dtype={"gene": np.int32, "cell": np.int32, "count": np.float32},
            chunksize=CHUNK_VALUES,
        )
        for chunk in chunks:
            gene_idx.append(chunk["gene"].to_numpy())
            cell_idx.append(chunk["cell"].to_numpy())
            counts.append(chunk["count"].to_numpy())
    g = np.concatenate(gene_idx) if gene_idx else np.empty(0, np.int32)
    c = np.concatenate(cell_idx) if cell_idx else np.empty(0, np.int32)
    v = np.concatenate(counts) if counts else np.empty(0, np.float32)
    for idx, n, what, other in ((g, n_genes, "gene", genes_file), (c, n_cells, "cell", cells_file)):
        if idx.size and (idx.min() < 1 or idx.max() > n):
            raise DataError(f"{path}: {what} index {idx.min()}..{idx.max()} outside 1..{n} (the {what}s in {other})")
    X = sp.coo_matrix((v, (c - 1, g - 1)), shape=(n_cells, n_genes)).tocsr()
    obs = {"sample": cells[1].to_numpy()} if cells.shape[1] > 1 else None
    return _make_anndata(X, cells[0], genes[1], obs=obs, var={"gene_id": genes[0].to_numpy()})


def read_paul15_h5(path: str | os.PathLike, *, chunk_genes: int = 1000) -> ad.AnnData:
    """Read Paul et al. 2015 myeloid progenitors as hosted for ``scanpy.datasets.paul15`` (``paul15.h5``).

    Layout (HDF5): ``data.debatched`` a dense genes x cells matrix, ``data.debatched_rownames`` gene names
    (``"Name;Alias"``; the first name is kept), ``data.debatched_colnames`` cell names, ``cluster.id`` the
    cluster (1-19) of each cell. The matrix is read in blocks of ``chunk_genes`` genes and made sparse.

    Returns
    -------
    All genes (scanpy additionally restricts to its list of informative genes; recipes may do the same), with
    ``obs["paul15_clusters"]`` such as ``"7MEP"`` (cluster id + the paper's cell-type name).
    """
    import h5py

    path = Path(path)
    _require(path, "paul15.h5")
    try:
        with h5py.File(path, "r") as f:
            data = f["data.debatched"]
            genes = [g.split(";")[0] for g in f["data.debatched_rownames"][()].astype(str)]
            cells = f["data.debatched_colnames"][()].astype(str)
            clusters = np.asarray(f["cluster.id"][()]).ravel().astype(int)
            if data.shape != (len(genes), len(cells)):
                raise DataError(f"{path}: data.debatched has shape {data.shape}, expected ({len(genes)}, {len(cells)})")
            blocks = [
                sp.csr_matrix(np.asarray(data[i : i + chunk_genes], dtype=np.float32))
                for i in range(0, data.shape[0], chunk_genes)
            ]
    except DataError:
        raise
    except (OSError, KeyError) as exc:
        raise DataError(f"{path}: not a readable paul15.h5 file ({type(exc).__name__}: {exc})") from None
    unknown = sorted(set(clusters) - set(PAUL15_CLUSTER_NAMES))
    if unknown or len(clusters) != len(cells):
        raise DataError(f"{path}: cluster.id must hold one id in 1..19 per cell (unexpected: {unknown[:5]})")
    labels = pd.Categorical([f"{c}{PAUL15_CLUSTER_NAMES[c]}" for c in clusters])
    X = sp.vstack(blocks, format="csr").T
    return _make_anndata(X, cells, genes, obs={"paul15_clusters": labels})


# --------------------------------------------------------------------------------------------- dispatch

#: Reader per format name used in ``config/datasets.yaml``.
FORMATS: dict[str, Callable[..., ad.AnnData]] = {
    "h5ad": read_h5ad_counts,
    "10x_h5": read_10x_h5,
    "10x_mtx": read_10x_mtx,
    "10x_mtx_tar": read_10x_mtx_tar,
    "csv": functools.partial(read_count_table, sep=","),
    "tsv": functools.partial(read_count_table, sep="\t"),
    "linnarsson_txt": read_linnarsson_txt,
    "segerstolpe_txt": read_segerstolpe_txt,
    "tabula_muris_facs_zip": read_tabula_muris_facs_zip,
    "sciplex_umi_triplets": read_sciplex_umi_triplets,
    "paul15_h5": read_paul15_h5,
}


def read_dataset_file(path: str | os.PathLike, fmt: str, **options) -> ad.AnnData:
    """Read ``path`` with the reader registered for ``fmt``.

    Parameters
    ----------
    path
        File (or folder, for ``10x_mtx``).
    fmt
        One of :data:`FORMATS`.
    **options
        Keyword options of that reader (e.g. ``orientation`` for csv/tsv, ``layer`` for h5ad).

    Raises
    ------
    ConfigError
        Unknown format or an option the reader does not take.
    DataError
        Missing or unreadable file.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"{path}: unknown data format {fmt!r} (known: {', '.join(FORMATS)})")
    reader = FORMATS[fmt]
    try:
        inspect.signature(reader).bind(path, **options)
    except TypeError as exc:
        raise ConfigError(f"{path}: format {fmt!r} does not accept options {sorted(options)} ({exc})") from None
    path = Path(path)
    _require(path, f"{fmt} data")
    return reader(path, **options)
