"""What a model can do beyond fitting and generating, as classes it inherits and callers test with ``isinstance``
(or ``issubclass`` on a registered class) instead of probing for methods.

- :class:`Encodes`: cells -> codes (``encode``): PCA, VAE, beta-TCVAE, MichiGAN (its beta-TCVAE's), the latent flow.
- :class:`PosteriorSampling`: an approximate posterior ``q(z|x)`` (``posterior``; ``encode(sample=True)`` draws
  from it): PCA (Tipping & Bishop 1999, Sec. 3.3), VAE, beta-TCVAE (Chen et al. 2018, Sec. 2).
- :class:`CodeConditioned`: cells generated from given codes (``sample(codes=...)``, ``generate_from_codes``,
  ``traverse``; Yu & Welch 2021, Fig. 5 and "latent space arithmetic"): VAE, beta-TCVAE, MichiGAN.
- :class:`NoiseInputs`: the noise behind generated cells can be read (``noise_of``; Yu & Welch 2021, Fig. 4):
  WGAN-GP, MichiGAN.

``tests/models/test_model_contract.py`` checks every registered model's capabilities against what it does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.base import SampledCells

if TYPE_CHECKING:
    import anndata as ad


class Encodes(ABC):
    """Maps cells to codes."""

    @abstractmethod
    def encode(self, adata: ad.AnnData) -> np.ndarray:
        """Codes of cells given as raw counts of the training genes (cells x code dims)."""


class PosteriorSampling(Encodes):
    """Has a diagonal-Gaussian view of its posterior over codes; ``encode(adata)`` gives its means and
    ``encode(adata, sample=True, seed=...)`` one draw per cell."""

    @abstractmethod
    def encode(self, adata: ad.AnnData, *, sample: bool = False, seed: int = 0) -> np.ndarray:
        """Posterior means, or one posterior draw per cell with ``sample=True``."""

    @abstractmethod
    def posterior(self, adata: ad.AnnData) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances of the cells' codes (cells x code dims each)."""


class NoiseInputs(ABC):
    """Generates from noise vectors that can be read back."""

    @abstractmethod
    def noise_of(self, n_cells: int, *, seed: int = 0) -> np.ndarray:
        """The noise vectors behind the cells of ``sample(n_cells, seed=seed)`` (n_cells x noise dims)."""


class CodeConditioned(ABC):
    """``sample(n, codes=...)``, ``generate_from_codes`` and ``traverse`` for models that generate from a code,
    through the base class's sampling hooks (so ``sample_to_h5ad`` streams them too). Inherit it before
    :class:`~scsynth_core.models.base.GenerativeModel`.

    Subclasses implement ``_draw_codes(n, rng)`` (codes of holistic sampling), ``_decode(codes, rng, shared)``
    (cells for given codes; ``shared``: one noise draw for all cells, for traversals), ``_code_centre()`` and
    ``code_dim``. Every chunk carries its codes as ``obsm["X_codes"]``.
    """

    code_dim: int
    _shared_noise: bool = False

    @abstractmethod
    def _draw_codes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Codes of ``n`` cells of holistic sampling."""

    @abstractmethod
    def _decode(self, codes: np.ndarray, rng: np.random.Generator, shared: bool):
        """Cells for the given codes."""

    @abstractmethod
    def _code_centre(self) -> np.ndarray:
        """The centre of the distribution ``_draw_codes`` draws from (a traversal's default base)."""

    def _sampling_options(self, n_cells: int, options: dict[str, Any]) -> dict[str, Any]:
        """``codes``: ``n_cells x code_dim`` codes to generate from, instead of drawing them."""
        codes = options.pop("codes", None)
        super()._sampling_options(n_cells, options)  # anything else is refused
        if codes is None:
            return {}
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2 or codes.shape != (n_cells, self.code_dim):
            raise ConfigError(f"codes must be {n_cells} x {self.code_dim}, got shape {codes.shape}")
        if not np.isfinite(codes).all():
            raise DataError("codes contain non-finite values")
        return {"codes": codes}

    def generate_from_codes(self, codes, *, seed: int = 0, batch_size: int = 10_000) -> ad.AnnData:
        """Cells generated from the given codes (one cell per row), e.g. codes predicted by latent arithmetic."""
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim == 1:
            codes = codes[None, :]
        return self.sample(codes.shape[0], codes=codes, seed=seed, batch_size=batch_size)

    def traverse(self, dim: int, values, *, base=None, seed: int = 0) -> ad.AnnData:
        """A latent traversal: cells decoded from ``base`` with code dim ``dim`` set to each of ``values``.

        ``base`` (length ``code_dim``) defaults to the centre of the code distribution ``sample`` draws from; all
        other dims (and, for GANs, the noise) are held fixed, so cells differ only through dim ``dim``.
        ``obs`` holds ``traverse_dim`` and ``traverse_value``.
        """
        if not isinstance(dim, (int, np.integer)) or not 0 <= dim < self.code_dim:
            raise ConfigError(f"dim must be an integer in [0, {self.code_dim}), got {dim!r}")
        values = np.asarray(values, dtype=np.float32).ravel()
        if values.size == 0:
            raise ConfigError("traverse needs at least one value")
        centre = self._code_centre() if base is None else np.asarray(base, dtype=np.float32).ravel()
        if centre.shape != (self.code_dim,):
            raise ConfigError(f"base must have {self.code_dim} values, got shape {centre.shape}")
        codes = np.tile(centre, (values.size, 1))
        codes[:, dim] = values
        self._shared_noise = True
        try:
            out = self.generate_from_codes(codes, seed=seed)
        finally:
            self._shared_noise = False
        out.obs["traverse_dim"] = int(dim)
        out.obs["traverse_value"] = values
        return out

    def _sample_chunk(self, n, labels, rng) -> SampledCells:
        call = self._sampling
        if "codes" in call.options:  # the given codes, in order, a chunk at a time
            start = call.state.get("cursor", 0)
            codes = call.options["codes"][start : start + n]
            call.state["cursor"] = start + n
        else:
            codes = self._draw_codes(n, rng)
        return SampledCells(
            self._decode(codes, rng, self._shared_noise), obsm={"X_codes": np.asarray(codes, dtype=np.float32)}
        )
