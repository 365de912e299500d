"""The two classical baselines of MichiGAN's comparisons (Yu & Welch 2021, Genome Biology 22:158, Tables 1-2):
probabilistic PCA (``pca``; Tipping & Bishop 1999, J. R. Stat. Soc. B 61:611, Sec. 3, eq. 7-8, posterior Sec. 3.3)
and a Gaussian mixture on the top principal components (``gmm``), both in the ``log1p`` representation.

The closed-form estimates, where we depart from the reference code and why: docs/models.md, "PCA and GMM".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from scsynth_core.data.preprocess import gene_mean_sd, to_representation
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.base import GenerativeModel
from scsynth_core.models.capabilities import PosteriorSampling

if TYPE_CHECKING:
    import anndata as ad

#: Genes up to which the covariance is accumulated densely and decomposed exactly (4,096^2 float64 = 134 MB);
#: above it a Lanczos solver (``scipy.sparse.linalg.eigsh``) works on the implicitly centred matrix.
DENSE_MAX_GENES = 4_096

#: Rows per block when data are streamed (transformed, projected or encoded).
BLOCK_ROWS = 2_048


# --------------------------------------------------------------------------------------------------- helpers
def _row_blocks(X, block: int = BLOCK_ROWS) -> Iterator[np.ndarray]:
    """Dense float64 blocks of rows of a dense or sparse matrix."""
    for start in range(0, X.shape[0], block):
        rows = X[start : start + block]
        yield np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float64)


def represent(adata: ad.AnnData, representation: str = "log1p"):
    """The cells of ``adata`` (raw counts) in ``representation``, sparse when ``X`` is sparse."""
    X = adata.X
    X = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
    return to_representation(X, representation)


def principal_axes(X, n_components: int, *, seed: int = 0, dense_max_genes: int = DENSE_MAX_GENES):
    """Mean, top ``n_components`` eigenvalues (descending) and eigenvectors (genes x q) of the covariance of ``X``.

    The covariance has divisor ``n`` (maximum likelihood). Also returns the total variance (the trace), so the
    variance outside the top components is ``total - eigenvalues.sum()``. Eigenvector signs are fixed (largest
    absolute entry positive) so results do not depend on the solver.
    """
    n, d = X.shape
    if not 1 <= n_components <= d:
        raise ConfigError(f"number of components must be between 1 and the number of genes ({d}), got {n_components}")
    mean = np.zeros(d)
    for block in _row_blocks(X):
        mean += block.sum(axis=0)
    mean /= n
    if d <= dense_max_genes:
        cov = np.zeros((d, d))
        for block in _row_blocks(X):
            centred = block - mean  # never in place: a dense float64 X yields views of itself
            cov += centred.T @ centred
        cov /= n
        total = float(np.trace(cov))
        from scipy.linalg import eigh

        values, vectors = eigh(cov, subset_by_index=[d - n_components, d - 1], driver="evr")
    else:
        if n_components >= d - 1:
            raise ConfigError(f"with more than {dense_max_genes} genes the number of components must be < genes - 1")
        from scipy.sparse.linalg import LinearOperator, eigsh

        Xs = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)

        def matvec(v):
            v = np.asarray(v, dtype=np.float64).ravel()
            return (Xs.T @ (Xs @ v)) / n - mean * (mean @ v)

        squares = np.asarray(Xs.multiply(Xs).sum(axis=0)).ravel() if sp.issparse(Xs) else (Xs * Xs).sum(axis=0)
        total = float(squares.sum() / n - mean @ mean)
        op = LinearOperator((d, d), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(seed).standard_normal(d)
        values, vectors = eigsh(op, k=n_components, which="LA", v0=v0)
    order = np.argsort(values)[::-1]
    values, vectors = np.maximum(values[order], 0.0), vectors[:, order]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return mean, values, vectors * np.where(signs == 0, 1.0, signs), total


def _check_genes(model: GenerativeModel, adata: ad.AnnData):
    """``adata``'s counts with the model's genes in the model's order (DataError if any gene is missing)."""
    names = [str(v) for v in adata.var_names]
    if names == model.var_names:
        return adata
    missing = sorted(set(model.var_names) - set(names))
    if missing:
        raise DataError(f"model '{model.name}': {len(missing)} training genes are missing (e.g. {missing[:3]})")
    return adata[:, model.var_names]


def _as_tensor(array: np.ndarray):
    import torch

    return torch.as_tensor(np.ascontiguousarray(array))


# --------------------------------------------------------------------------------------------------- PPCA
class PPCA:
    """Closed-form maximum-likelihood probabilistic PCA (Tipping & Bishop 1999, Sec. 3) of a cells x genes matrix."""

    def __init__(self, mean: np.ndarray, W: np.ndarray, noise_variance: float, eigenvalues: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.W = np.asarray(W, dtype=np.float64)
        self.noise_variance = float(noise_variance)
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        # M = W^T W + sigma^2 I (q x q); posterior mean M^{-1} W^T (x - mu), covariance sigma^2 M^{-1}.
        M = self.W.T @ self.W + self.noise_variance * np.eye(self.W.shape[1])
        self._encoder = np.linalg.solve(M, self.W.T)  # q x d
        self.posterior_covariance = self.noise_variance * np.linalg.inv(M)

    @classmethod
    def fit(cls, X, n_latent: int, *, seed: int = 0, dense_max_genes: int = DENSE_MAX_GENES) -> PPCA:
        d = X.shape[1]
        if not 1 <= n_latent < d:
            raise ConfigError(f"n_latent must be between 1 and the number of genes - 1 ({d - 1}), got {n_latent}")
        mean, values, vectors, total = principal_axes(X, n_latent, seed=seed, dense_max_genes=dense_max_genes)
        noise = max((total - values.sum()) / (d - n_latent), 0.0)
        if noise <= 0:
            raise DataError(f"PPCA: the data have no variance outside the top {n_latent} components (noise 0)")
        W = vectors * np.sqrt(np.maximum(values - noise, 0.0))
        return cls(mean, W, noise, values)

    @property
    def n_latent(self) -> int:
        return self.W.shape[1]

    def log_likelihood(self) -> float:
        """Mean per-cell log-likelihood of the training data at the ML solution (``tr(C^-1 S) = d`` there)."""
        d, q = self.W.shape
        return -0.5 * (
            d * math.log(2 * math.pi) + np.log(self.eigenvalues).sum() + (d - q) * math.log(self.noise_variance) + d
        )

    def posterior_mean(self, X) -> np.ndarray:
        """``E[z | x]`` for every row of ``X`` (cells x q), streamed in blocks."""
        out = [(block - self.mean) @ self._encoder.T for block in _row_blocks(X)]
        return np.vstack(out) if out else np.zeros((0, self.n_latent))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws ``x = W z + mu + e`` and their codes ``z``."""
        z = rng.standard_normal((n, self.n_latent))
        noise = rng.standard_normal((n, self.W.shape[0])) * math.sqrt(self.noise_variance)
        return z @ self.W.T + self.mean + noise, z


class PPCAModel(PosteriorSampling, GenerativeModel):
    """``pca``: probabilistic PCA on log1p-normalised expression (MichiGAN's PCA baseline). See docs/models.md.

    Hyperparameters: ``n_latent`` (10, MichiGAN), ``clip_at_zero`` (False: Gaussian output as the reference),
    ``scale_genes`` (False: PCA of the log1p values; True: of unit-variance genes, as the VAEs).
    Nothing is iterated, so ``demo`` equals ``paper`` and ``max_steps`` is ignored.
    """

    name = "pca"  # presets and hyperparameter types: scsynth_core.models.specs.classic
    _gene_sd: np.ndarray | None = None

    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        n_latent = self.params["n_latent"]
        X = represent(adata, self.representation)
        # X is already in the representation: "counts" leaves it as it is.
        self._gene_sd = gene_mean_sd(X, "counts")[1] if self.params["scale_genes"] else None
        self._ppca = PPCA.fit(self._scaled(X), n_latent, seed=seed)
        explained = self._ppca.eigenvalues.sum() / (
            self._ppca.eigenvalues.sum() + self._ppca.noise_variance * (adata.n_vars - n_latent)
        )
        return {
            "step": [0],
            "log_likelihood": [self._ppca.log_likelihood()],
            "noise_variance": [self._ppca.noise_variance],
            "explained_variance": [float(explained)],
        }

    def encode(self, adata: ad.AnnData, *, sample: bool = False, seed: int = 0) -> np.ndarray:
        """Codes of the cells of ``adata`` (raw counts): posterior means (cells x ``n_latent``), or one posterior
        draw per cell when ``sample=True`` (covariance ``sigma^2 M^{-1}``, Tipping & Bishop Sec. 3.3)."""
        if getattr(self, "_ppca", None) is None:
            raise ConfigError("model 'pca' is not fitted: call fit() or load() before encode()")
        z = self._ppca.posterior_mean(self._scaled(represent(_check_genes(self, adata), self.representation)))
        if sample:
            chol = np.linalg.cholesky(self._ppca.posterior_covariance)
            z = z + np.random.default_rng(seed).standard_normal(z.shape) @ chol.T
        return z

    def posterior(self, adata: ad.AnnData) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances (cells x ``n_latent``) of the cells' codes; the variances are the
        diagonal of ``sigma^2 M^{-1}``, the same for every cell (Tipping & Bishop Sec. 3.3)."""
        mean = self.encode(adata)
        logvar = np.log(np.diag(self._ppca.posterior_covariance))
        return mean, np.broadcast_to(logvar, mean.shape).copy()

    def _scaled(self, X):
        """Cells in the representation, each gene divided by its training s.d. when ``scale_genes`` (PCA centres)."""
        if self._gene_sd is None:
            return X
        return sp.csr_matrix(X @ sp.diags(1.0 / self._gene_sd)) if sp.issparse(X) else X / self._gene_sd

    def _sample_chunk(self, n, labels, rng):
        x, _ = self._ppca.sample(n, rng)
        if self._gene_sd is not None:
            x = x * self._gene_sd  # back to the representation's scale
        return np.maximum(x, 0.0) if self.params["clip_at_zero"] else x

    def _get_state(self) -> dict[str, Any]:
        f = self._ppca
        state = {
            "mean": _as_tensor(f.mean),
            "W": _as_tensor(f.W),
            "noise_variance": f.noise_variance,
            "eigenvalues": _as_tensor(f.eigenvalues),
        }
        return state if self._gene_sd is None else state | {"gene_sd": _as_tensor(self._gene_sd)}

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        self._ppca = PPCA(
            state["mean"].numpy(), state["W"].numpy(), state["noise_variance"], state["eigenvalues"].numpy()
        )
        self._gene_sd = state["gene_sd"].numpy() if "gene_sd" in state else None


# --------------------------------------------------------------------------------------------------- GMM
class PCAGaussianMixture:
    """A Gaussian mixture on the top principal components, mapped back to genes (see docs/models.md)."""

    def __init__(self, *, mean, axes, residual_variance, weights, means, covariances, covariance_type) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.axes = np.asarray(axes, dtype=np.float64)  # genes x n_pcs
        self.residual_variance = float(residual_variance)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.covariances = np.asarray(covariances, dtype=np.float64)
        self.covariance_type = covariance_type
        self._chol = self._cholesky_factors()

    def _cholesky_factors(self) -> np.ndarray:
        """Per component ``L_k`` with ``L_k L_k^T`` = its covariance (components x pcs x pcs)."""
        k, q = self.means.shape
        if self.covariance_type == "full":
            full = self.covariances
        elif self.covariance_type == "tied":
            full = np.broadcast_to(self.covariances, (k, q, q))
        elif self.covariance_type == "diag":
            full = np.einsum("ki,ij->kij", self.covariances, np.eye(q))
        else:  # spherical
            full = self.covariances[:, None, None] * np.eye(q)
        return np.linalg.cholesky(full)

    @classmethod
    def fit(
        cls,
        X,
        *,
        n_pcs: int,
        n_components: int | str,
        covariance_type: str,
        bic_components: Sequence[int],
        covariance_types: Sequence[str],
        max_iter: int,
        n_init: int,
        reg_covar: float,
        seed: int = 0,
        dense_max_genes: int = DENSE_MAX_GENES,
    ):
        """Fit on a cells x genes matrix; returns the model and a BIC table (one row per candidate fitted)."""
        from sklearn.mixture import GaussianMixture

        mean, values, axes, total = principal_axes(X, n_pcs, seed=seed, dense_max_genes=dense_max_genes)
        d = X.shape[1]
        residual = max((total - values.sum()) / (d - n_pcs), 0.0) if d > n_pcs else 0.0
        scores = np.vstack([(block - mean) @ axes for block in _row_blocks(X)])
        if n_components == "bic":
            candidates = [(int(k), c) for c in covariance_types for k in bic_components]
        else:
            candidates = [(int(n_components), covariance_type)]
        table: dict[str, list] = {"n_components": [], "covariance_type": [], "bic": [], "converged": [], "n_iter": []}
        best, best_bic = None, np.inf
        for k, ctype in candidates:
            if k > scores.shape[0]:
                continue  # more components than cells
            gmm = GaussianMixture(
                n_components=k,
                covariance_type=ctype,
                max_iter=max_iter,
                n_init=n_init,
                reg_covar=reg_covar,
                random_state=seed,
            )
            gmm.fit(scores)
            bic = float(gmm.bic(scores))
            for key, value in (
                ("n_components", k),
                ("covariance_type", ctype),
                ("bic", bic),
                ("converged", bool(gmm.converged_)),
                ("n_iter", int(gmm.n_iter_)),
            ):
                table[key].append(value)
            if bic < best_bic:
                best, best_bic = gmm, bic
        if best is None:
            raise DataError(f"GMM: no candidate fits {scores.shape[0]} cells (components {list(bic_components)})")
        model = cls(
            mean=mean,
            axes=axes,
            residual_variance=residual,
            weights=best.weights_,
            means=best.means_,
            covariances=best.covariances_,
            covariance_type=best.covariance_type,
        )
        return model, table

    def sample(self, n: int, rng: np.random.Generator, *, residual_noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``n`` cells (genes space) and their component labels."""
        k, q = self.means.shape
        labels = rng.choice(k, size=n, p=self.weights / self.weights.sum())
        eps = rng.standard_normal((n, q))
        z = np.empty((n, q))
        for j in range(k):  # a loop over the (few) components; their cells are drawn at once
            rows = labels == j
            z[rows] = self.means[j] + eps[rows] @ self._chol[j].T
        x = self.mean + z @ self.axes.T
        if residual_noise and self.residual_variance > 0:
            x += rng.standard_normal(x.shape) * math.sqrt(self.residual_variance)
        return x, labels


class GMMModel(GenerativeModel):
    """``gmm``: Gaussian mixture on the principal components of log1p expression (MichiGAN's GMM baseline).

    Hyperparameters (see docs/models.md): ``n_components`` (``"bic"`` or an integer), ``bic_components``,
    ``covariance_types`` (searched when ``"bic"``), ``covariance_type`` (with an integer ``n_components``),
    ``n_pcs`` (50), ``residual_noise`` (True), ``max_iter`` (EM iterations, 100 as sklearn; ``fit(max_steps=...)``
    lowers it), ``n_init`` (1), ``reg_covar`` (1e-6), ``clip_at_zero`` (False). The history has one row per
    candidate fitted (``step`` = its index): ``n_components``, ``covariance_type``, ``bic``, ``converged``,
    ``n_iter`` and ``selected`` (the lowest BIC, the mixture kept).

    Presets. ``paper``: BIC over 1-10, 15, 20, 25, 30, 40 and 50 components x the reference's four covariance types
    (the reference searches 1-100; on 50 PCs more than ~50 full-covariance components exceed what 10,000 cells
    support and each fit costs minutes). ``demo``: 10 full-covariance components on 20 PCs.
    """

    name = "gmm"  # presets and hyperparameter types: scsynth_core.models.specs.classic

    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        p = self.params
        if p["n_pcs"] > adata.n_vars:
            raise ConfigError(
                f"model 'gmm': n_pcs must be at most the number of genes ({adata.n_vars}), got {p['n_pcs']}"
            )
        max_iter = p["max_iter"] if max_steps is None else max(1, min(p["max_iter"], int(max_steps)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in the history's `converged`
            self._gmm, table = PCAGaussianMixture.fit(
                represent(adata, self.representation),
                n_pcs=p["n_pcs"],
                n_components=p["n_components"],
                covariance_type=p["covariance_type"],
                bic_components=p["bic_components"],
                covariance_types=p["covariance_types"],
                max_iter=max_iter,
                n_init=p["n_init"],
                reg_covar=p["reg_covar"],
                seed=seed,
            )
        best = int(np.argmin(table["bic"]))
        table["selected"] = [i == best for i in range(len(table["bic"]))]
        return {"step": list(range(len(table["bic"]))), **table}

    def _sample_chunk(self, n, labels, rng):
        x, _ = self._gmm.sample(n, rng, residual_noise=self.params["residual_noise"])
        return np.maximum(x, 0.0) if self.params["clip_at_zero"] else x

    def _get_state(self) -> dict[str, Any]:
        g = self._gmm
        return {
            "mean": _as_tensor(g.mean),
            "axes": _as_tensor(g.axes),
            "residual_variance": g.residual_variance,
            "weights": _as_tensor(g.weights),
            "means": _as_tensor(g.means),
            "covariances": _as_tensor(g.covariances),
            "covariance_type": g.covariance_type,
        }

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        self._gmm = PCAGaussianMixture(
            mean=state["mean"].numpy(),
            axes=state["axes"].numpy(),
            residual_variance=state["residual_variance"],
            weights=state["weights"].numpy(),
            means=state["means"].numpy(),
            covariances=state["covariances"].numpy(),
            covariance_type=state["covariance_type"],
        )
