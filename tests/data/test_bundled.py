"""The bundled 700-cell PBMC 68k subset: exact integer counts recovered from scanpy's file, verified loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from scsynth_core.data import bundled
from scsynth_core.errors import DataError

SHARED = Path("/work/shared/data/pbmc68k_reduced_counts/pbmc68k_reduced_counts.h5ad")

#: Counts per bulk label (Zheng et al. 2017 purified-population labels), from the shared dataset's README.
BULK_COUNTS = {
    "Dendritic": 240,
    "CD14+ Monocyte": 129,
    "CD19+ B": 95,
    "CD4+/CD25 T Reg": 68,
    "CD8+ Cytotoxic T": 54,
    "CD8+/CD45RA+ Naive Cytotoxic": 43,
    "CD56+ NK": 31,
    "CD4+/CD45RO+ Memory": 19,
    "CD34+": 13,
    "CD4+/CD45RA+/CD25- Naive T": 8,
}


@pytest.fixture(scope="module")
def demo() -> ad.AnnData:
    return bundled.BUNDLED["pbmc68k_reduced"]()


def test_registry_points_to_loader():
    assert bundled.BUNDLED["pbmc68k_reduced"] is bundled.load_pbmc68k_reduced_counts


def test_shape_dtype_and_labels(demo):
    assert demo.shape == (700, 765)
    assert sp.isspmatrix_csr(demo.X) or isinstance(demo.X, sp.csr_array)
    assert demo.X.dtype == np.int32
    assert demo.X.data.min() >= 1  # only true non-zeros are stored
    assert demo.X.nnz == 174_400
    assert demo.obs["bulk_labels"].value_counts().to_dict() == BULK_COUNTS
    assert demo.obs["louvain"].nunique() == 11
    assert set(demo.obs["phase"].unique()) == {"G1", "S", "G2M"}
    # Library sizes refer to all genes of the 68k matrix, so they bound the sums over these 765 genes.
    row_sums = np.asarray(demo.X.sum(axis=1)).ravel()
    assert np.all(demo.obs["n_counts_all_genes"].to_numpy() >= row_sums)
    assert demo.var_names.is_unique and demo.obs_names.is_unique


@pytest.mark.skipif(not SHARED.is_file(), reason="shared pbmc68k_reduced_counts copy absent")
def test_equals_shared_copy(demo):
    ref = ad.read_h5ad(SHARED)
    assert list(demo.obs_names) == list(ref.obs_names)
    assert list(demo.var_names) == list(ref.var_names)
    assert (demo.X != ref.X).nnz == 0
    assert demo.X.nnz == ref.X.nnz
    assert (demo.obs["bulk_labels"].astype(str).to_numpy() == ref.obs["bulk_labels"].astype(str).to_numpy()).all()
    assert np.array_equal(demo.obs["n_counts_all_genes"].to_numpy(), ref.obs["n_counts_all_genes"].to_numpy())


def test_tampered_file_fails_checksum(tmp_path, monkeypatch):
    copy = tmp_path / "10x_pbmc68k_reduced.h5ad"
    shutil.copyfile(bundled.pbmc68k_reduced_path(), copy)
    with copy.open("ab") as fh:
        fh.write(b"\0")  # one extra byte: still a readable HDF5 file, different checksum
    monkeypatch.setattr(bundled, "pbmc68k_reduced_path", lambda: copy)
    with pytest.raises(DataError, match="sha256"):
        bundled.load_pbmc68k_reduced_counts()


def test_non_integer_recovery_fails(tmp_path, monkeypatch):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old-format file; see the loader
        src = ad.read_h5ad(bundled.pbmc68k_reduced_path())
    raw = src.raw.to_adata()
    raw.X = raw.X.copy()
    raw.X.data = raw.X.data + np.float32(0.3)  # shifts every expm1(...) * n_counts / 1e4 off the integers
    src.raw = raw
    path = tmp_path / "shifted.h5ad"
    src.write_h5ad(path)
    monkeypatch.setattr(bundled, "pbmc68k_reduced_path", lambda: path)
    monkeypatch.setattr(bundled, "PBMC68K_REDUCED_SHA256", bundled._sha256(path))
    with pytest.raises(DataError, match="not integers"):
        bundled.load_pbmc68k_reduced_counts()


def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "pbmc68k_reduced_path", lambda: tmp_path / "absent.h5ad")
    with pytest.raises(DataError, match="not found"):
        bundled.load_pbmc68k_reduced_counts()
