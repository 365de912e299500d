"""Latent flow matching on a count autoencoder (``latentflow``), in the family of CFGen (Palma et al.,
"Multi-Modal and Multi-Attribute Generation of Single Cells with CFGen", ICLR 2025, Sec. 3): a negative binomial
autoencoder (Sec. 3.1), then conditional flow matching in its code space (Sec. 3.2; Lipman et al. 2023; Tong et
al. 2024) with classifier-free guidance (Ho & Salimans 2022); integer counts out.

Networks, the two training stages, departures from CFGen and the presets: docs/models.md, "latentflow".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from scsynth_core.data.preprocess import to_representation
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.base import GenerativeModel
from scsynth_core.models.capabilities import Encodes
from scsynth_core.models.monitors import held_out_monitor
from scsynth_core.models.nn import batchnorm_momentum, dense_stack
from scsynth_core.models.training import (
    TrainingLoop,
    TrainingTask,
    array_digest,
    dense_rows,
    merge_histories,
    resolve_device,
    seed_everything,
)
from scsynth_core.models.vae import check_genes

if TYPE_CHECKING:
    import anndata as ad

#: Rows per forward pass when encoding or decoding many cells (bounds memory).
_BLOCK_ROWS = 4096


# ----------------------------------------------------------------------------------------------- the networks
#: Hidden layers of the autoencoder: Linear -> batch norm -> ReLU.
LAYER_ORDER = ("linear", "norm", "act")


class CountEncoder(nn.Module):
    """``log1p`` expression -> hidden layers -> a deterministic code."""

    def __init__(self, n_genes: int, *, widths: list[int], latent_dim: int) -> None:
        super().__init__()
        self.hidden = dense_stack([int(n_genes), *widths], LAYER_ORDER)
        self.code = nn.Linear(widths[-1], int(latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.hidden(x))


class CountDecoder(nn.Module):
    """Code -> hidden layers -> gene proportions (softmax); one inverse NB dispersion per gene."""

    def __init__(self, n_genes: int, *, widths: list[int], latent_dim: int) -> None:
        super().__init__()
        self.n_genes = int(n_genes)
        self.hidden = dense_stack([int(latent_dim), *widths], LAYER_ORDER)
        self.logits = nn.Linear(widths[-1], self.n_genes)
        self.log_theta = nn.Parameter(torch.zeros(self.n_genes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(self.hidden(z)), dim=-1)


def nb_log_likelihood(x: torch.Tensor, mean: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Negative binomial log-probability of counts ``x`` with ``mean`` and inverse dispersion ``theta`` (per entry).

    ``p(x) = Gamma(x + theta) / (Gamma(theta) x!) * (theta / (theta + mean))^theta * (mean / (theta + mean))^x``.
    """
    log_total = torch.log(theta + mean + eps)
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1.0)
        + theta * (torch.log(theta + eps) - log_total)
        + x * (torch.log(mean + eps) - log_total)
    )


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of flow times ``t`` in [0, 1] (Vaswani et al. 2017, Sec. 3.5, on ``1000 t``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    angles = 1000.0 * t[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, embedding_dim: int) -> None:
        super().__init__()
        self.inner = nn.Linear(width, width)
        self.condition = nn.Linear(embedding_dim, width)
        self.outer = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return h + self.outer(F.silu(self.inner(F.silu(h)) + self.condition(c)))


class VelocityNet(nn.Module):
    """Residual MLP ``v(x_t, t, type)``; type index ``n_types`` is the "no type" token of guidance."""

    def __init__(self, dim: int, *, n_types: int, width: int, blocks: int, embedding_dim: int) -> None:
        super().__init__()
        self.dim, self.n_types, self.embedding_dim = int(dim), int(n_types), int(embedding_dim)
        self.input = nn.Linear(self.dim, width)
        self.time = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        self.types = nn.Embedding(self.n_types + 1, embedding_dim)
        self.blocks = nn.ModuleList(_ResidualBlock(width, embedding_dim) for _ in range(blocks))
        self.output = nn.Linear(width, self.dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        c = self.time(time_embedding(t, self.embedding_dim)) + self.types(types)
        h = self.input(x)
        for block in self.blocks:
            h = block(h, c)
        return self.output(F.silu(h))


@torch.no_grad()
def integrate(net: VelocityNet, x0: torch.Tensor, types: torch.Tensor, *, steps: int, guidance: float) -> torch.Tensor:
    """Solve ``dx/dt = v(x, t, type)`` from ``t = 0`` to 1 with ``steps`` midpoint steps (classifier-free guidance
    ``v_none + guidance * (v_type - v_none)`` when ``guidance`` is not 1)."""
    none = torch.full_like(types, net.n_types)

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
        v = net(x, tt, types)
        if guidance != 1.0:
            v_none = net(x, tt, none)
            v = v_none + guidance * (v - v_none)
        return v

    x, h = x0, 1.0 / steps
    for i in range(steps):
        t = i * h
        x = x + h * velocity(x + 0.5 * h * velocity(x, t), t + 0.5 * h)
    return x


def code_clusters(codes: np.ndarray, n_clusters: int, *, seed: int) -> np.ndarray:
    """k-means clusters of the training cells' codes, the conditions of an unlabelled fit (self-guidance on
    cluster labels, Hu et al. 2023, "Self-Guided Diffusion Models", Sec. 3.2: the flow learns each cluster's part
    of the code distribution and generation draws clusters with their training frequencies)."""
    from sklearn.cluster import KMeans

    k = max(1, min(int(n_clusters), codes.shape[0]))
    return KMeans(k, n_init=4, random_state=seed).fit_predict(codes).astype(np.int64)


# ------------------------------------------------------------------------------------------ the two stages
class _AutoencoderTask(TrainingTask):
    """One NB autoencoder minibatch step (stage 1)."""

    generator_names = ("decoder",)
    representation = "counts"

    def __init__(
        self,
        p: dict,
        X,
        train_rows: np.ndarray,
        encoder: CountEncoder,
        decoder: CountDecoder,
        *,
        rng: np.random.Generator,
        device: torch.device,
        per_epoch: int,
    ) -> None:
        self.p, self.X, self.train_rows, self.rng, self.device, self.per_epoch = (
            p,
            X,
            train_rows,
            rng,
            device,
            per_epoch,
        )
        self.encoder, self.decoder = encoder, decoder
        self.modules = {"encoder": encoder, "decoder": decoder}
        self._params = [*encoder.parameters(), *decoder.parameters()]
        networks = [q for q in self._params if q is not decoder.log_theta]
        # The dispersions get their own step size: at the networks' rate they move about one step size per step
        # and stay near their start on small sets (docs/models.md, "latentflow").
        groups = [{"params": networks}, {"params": [decoder.log_theta], "lr": p["dispersion_learning_rate"]}]
        self.optimizers = {"adam": torch.optim.AdamW(groups, lr=p["ae_learning_rate"], weight_decay=p["weight_decay"])}

    def step(self, step: int) -> dict[str, torch.Tensor]:
        rows = self.rng.choice(self.train_rows, size=min(self.p["batch_size"], len(self.train_rows)), replace=False)
        counts = torch.from_numpy(dense_rows(self.X, np.sort(rows))).to(self.device)
        library = counts.sum(dim=1, keepdim=True)
        code = self.encoder(to_representation(counts, "log1p"))
        if self.p["code_noise"] > 0:
            code = code + self.p["code_noise"] * self._thinning_spread(counts, code.detach()) * torch.randn_like(code)
        proportions = self.decoder(code)
        nll = -nb_log_likelihood(counts, library * proportions, self.decoder.log_theta.exp()).sum(dim=1).mean()
        optimizer = self.optimizers["adam"]
        optimizer.zero_grad(set_to_none=True)
        nll.backward()
        torch.nn.utils.clip_grad_norm_(self._params, self.p["gradient_clip"])
        optimizer.step()
        return {"nb_nll": nll}

    @torch.no_grad()
    def _thinning_spread(self, counts: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Per code dimension, the spread of how far codes move when each count is binomially thinned to half:
        the codes' own sampling noise. Noise of this size on the codes makes the decoder map the codes a cell's
        counts could have given to one mean, so a mean cannot carry that cell's sampling noise (docs/models.md,
        "latentflow"); deep counts move codes little and get little noise. Batch-norm statistics are frozen
        for the thinned pass (momentum 0), so only real minibatches shape them."""
        thinned = torch.binomial(counts, torch.full_like(counts, 0.5))
        with batchnorm_momentum(self.encoder, 0.0):
            moved = self.encoder(to_representation(thinned, "log1p")) - code
        return moved.std(dim=0, keepdim=True)

    def log_columns(self, step: int) -> dict[str, Any]:
        return {"epoch": (step - 1) // self.per_epoch + 1}


class _FlowTask(TrainingTask):
    """One flow-matching minibatch step on the standardised codes (stage 2)."""

    generator_names = ("velocity",)
    representation = "counts"

    def __init__(
        self,
        model: LatentFlow,
        targets: torch.Tensor,
        types: torch.Tensor,
        velocity: VelocityNet,
        *,
        rng: np.random.Generator,
        device: torch.device,
        per_epoch: int,
    ) -> None:
        p = model.params
        self.model, self.p, self.targets, self.types, self.rng = model, p, targets, types, rng
        self.device, self.per_epoch, self.velocity = device, per_epoch, velocity
        self.modules = {"velocity": velocity}
        self.optimizers = {
            "adam": torch.optim.AdamW(velocity.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"])
        }

    def step(self, step: int) -> dict[str, torch.Tensor]:
        n = self.targets.shape[0]
        half = max(1, min(self.p["batch_size"], n) // 2)
        rows = torch.from_numpy(self.rng.integers(0, n, size=2 * half)).to(self.device)
        x1, types = self.targets[rows], self.types[rows].clone()
        drop = torch.rand(len(rows), device=self.device) < self.p["label_dropout"]
        types[drop] = self.velocity.n_types
        t = torch.rand(half, device=self.device)
        t = torch.cat([t, 1.0 - t])  # antithetic times
        x0 = torch.randn_like(x1)
        xt = (1.0 - t[:, None]) * x0 + t[:, None] * x1 + self.p["sigma"] * torch.randn_like(x1)
        loss = F.mse_loss(self.velocity(xt, t, types), x1 - x0)
        optimizer = self.optimizers["adam"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.velocity.parameters(), self.p["gradient_clip"])
        optimizer.step()
        return {"flow_loss": loss}

    def log_columns(self, step: int) -> dict[str, Any]:
        return {"epoch": (step - 1) // self.per_epoch + 1}

    def generate(self, n: int, seed: int):
        """``n`` cells, types drawn with the training frequencies, from streams of ``seed`` only."""
        self.velocity.eval()
        rng = np.random.default_rng([seed, 5])
        return self.model.generate_counts(self.model.type_index(None, n, rng), rng, rng, velocity=self.velocity)


# --------------------------------------------------------------------------------------------------- the model
class LatentFlow(Encodes, GenerativeModel):
    """Conditional flow matching in the code space of a negative binomial autoencoder (docs/models.md).

    Fitted with a ``label_key`` it generates cells of requested types; without, it generates holistically.
    """

    name = "latentflow"  # presets and hyperparameter types: scsynth_core.models.specs.flow

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._encoder: CountEncoder | None = None
        self._decoder: CountDecoder | None = None
        self._velocity: VelocityNet | None = None
        self._code_mean = self._code_sd = None
        self._cluster_frequencies: np.ndarray | None = None  # unlabelled fits: frequencies of the code clusters
        self._device = torch.device("cpu")

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        p, dev = self.params, resolve_device(device)
        X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
        if X.shape[0] < 2:
            raise DataError(f"model '{self.name}' needs at least 2 training cells (batch normalisation)")
        n_cells, n_genes = X.shape
        if self.label_key is not None:
            types = adata.obs[self.label_key].astype(str).map({c: i for i, c in enumerate(self.categories)})
            types = types.to_numpy(dtype=np.int64)
        else:
            types = np.zeros(n_cells, dtype=np.int64)
        monitor, _, train_rows = held_out_monitor(p, X, seed=seed, labels=types)
        per_epoch = max(1, math.ceil(len(train_rows) / p["batch_size"]))
        rng = seed_everything(seed)

        self._encoder = CountEncoder(n_genes, widths=p["encoder_layers"], latent_dim=p["latent_dim"]).to(dev)
        self._decoder = CountDecoder(n_genes, widths=p["decoder_layers"], latent_dim=p["latent_dim"]).to(dev)
        ae_task = _AutoencoderTask(
            p, X, train_rows, self._encoder, self._decoder, rng=rng, device=dev, per_epoch=per_epoch
        )
        ae_params = p | {"monitor_every": 0, "select": "last", "ema_decay": 0.0, "patience": None}
        ae_loop = TrainingLoop(
            self.name,
            ae_params,
            max_steps=max(p["ae_epochs"] * per_epoch, p["ae_min_steps"]),
            rng=rng,
            seed=seed,
            checkpoint=None if checkpoint is None else f"{checkpoint}.ae",
            progress=progress,
            identity={"shape": [n_cells, n_genes], "stage": "autoencoder"},
            desc=f"train {self.name} autoencoder",
        )
        ae_history = ae_loop.run(ae_task)
        self._encoder.eval()
        self._decoder.eval()

        codes = self._codes(X[train_rows], dev)
        self._code_mean, self._code_sd = codes.mean(axis=0), codes.std(axis=0) + 1e-6
        standardised = (codes - self._code_mean) / self._code_sd
        targets = torch.from_numpy(standardised.astype(np.float32)).to(dev)
        flow_types = types[train_rows]
        self._cluster_frequencies = None
        if self.categories is None and p["code_clusters"] > 1:
            flow_types = code_clusters(standardised[:, :-1], p["code_clusters"], seed=seed)
            self._cluster_frequencies = np.bincount(flow_types, minlength=p["code_clusters"]) / len(flow_types)
        n_types = self._n_types()
        self._velocity = VelocityNet(
            targets.shape[1],
            n_types=n_types,
            width=p["flow_width"],
            blocks=p["flow_blocks"],
            embedding_dim=p["embedding_dim"],
        ).to(dev)
        self._device = dev
        total = p["epochs"] * per_epoch if p["max_steps"] is None else min(p["epochs"] * per_epoch, p["max_steps"])
        total = int(max_steps) if max_steps is not None else total
        flow_params = p
        if p["max_minutes"] is not None:
            used = ae_history["time_s"][-1] / 60.0 if ae_history.get("time_s") else 0.0
            flow_params = p | {"max_minutes": max(float(p["max_minutes"]) - used, 1e-3)}
        flow_task = _FlowTask(
            self,
            targets,
            torch.from_numpy(flow_types).to(dev),
            self._velocity,
            rng=rng,
            device=dev,
            per_epoch=per_epoch,
        )
        flow_loop = TrainingLoop(
            self.name,
            flow_params,
            max_steps=total,
            rng=rng,
            monitor=monitor,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            identity={"shape": [n_cells, n_genes], "stage": "flow", "codes": array_digest(codes)},
            desc=f"train {self.name} flow",
        )
        flow_history = flow_loop.run(flow_task)
        self._velocity.eval()
        self.training_summary = flow_loop.summary | {"autoencoder_steps": ae_loop.summary["steps"]}
        return merge_histories([("autoencoder", ae_history), ("flow", flow_history)])

    @torch.no_grad()
    def _codes(self, X, device: torch.device) -> np.ndarray:
        """The encoder's codes with the standardised log library size appended (cells x (latent_dim + 1))."""
        out = []
        for start in range(0, X.shape[0], _BLOCK_ROWS):
            counts = torch.from_numpy(dense_rows(X, np.arange(start, min(start + _BLOCK_ROWS, X.shape[0]))))
            library = counts.sum(dim=1, keepdim=True).clamp_min(1.0)
            code = self._encoder(to_representation(counts, "log1p").to(device)).cpu()
            out.append(torch.cat([code, library.log()], dim=1).numpy())
        return np.concatenate(out).astype(np.float64)

    # -- generation -------------------------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self._velocity is None:
            raise ConfigError(f"model '{self.name}' is not fitted: call fit() or load() first")

    def _start_sampling(self, seed: int) -> None:
        # Separate streams for the flow's noise and the counts: the cells of a seed do not depend on how
        # ``sample`` splits them into chunks.
        self._streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]

    def type_index(self, labels: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
        """Type indices of ``labels`` (``None``: drawn from ``rng`` with the training frequencies)."""
        if labels is not None:
            lookup = {c: i for i, c in enumerate(self.categories)}
            return np.fromiter((lookup[str(v)] for v in labels), dtype=np.int64, count=n)
        if self._cluster_frequencies is not None:
            return rng.choice(len(self._cluster_frequencies), size=n, p=self._cluster_frequencies)
        if self.categories is None:
            return np.zeros(n, dtype=np.int64)
        return rng.choice(len(self.categories), size=n, p=self.class_frequencies)

    def _n_types(self) -> int:
        """Conditions of the flow: the cell types, the code clusters of an unlabelled fit, or one."""
        if self.categories is not None:
            return len(self.categories)
        return 1 if self._cluster_frequencies is None else len(self._cluster_frequencies)

    @torch.no_grad()
    def generate_counts(
        self,
        types: np.ndarray,
        noise_rng: np.random.Generator,
        count_rng: np.random.Generator,
        *,
        velocity: VelocityNet | None = None,
    ) -> sp.csr_matrix:
        """Cells of raw counts (CSR), one per entry of ``types`` (type indices), in blocks of rows: flow noise
        from ``noise_rng``, negative binomial draws from ``count_rng``."""
        net = velocity or self._velocity
        n = len(types)
        types = torch.from_numpy(np.asarray(types, dtype=np.int64)).to(self._device)
        noise = torch.from_numpy(noise_rng.standard_normal((n, net.dim), dtype=np.float32)).to(self._device)
        blocks = []
        for start in range(0, n, _BLOCK_ROWS):
            stop = min(start + _BLOCK_ROWS, n)
            x = (
                integrate(
                    net,
                    noise[start:stop],
                    types[start:stop],
                    steps=self.params["ode_steps"],
                    guidance=float(self.params["guidance"]),
                )
                .cpu()
                .numpy()
                .astype(np.float64)
            )
            counts = self.decode_counts(x * self._code_sd + self._code_mean, count_rng)
            blocks.append(sp.csr_matrix(counts.astype(np.float32)))
        return sp.vstack(blocks, format="csr")

    @torch.no_grad()
    def decode_means(self, codes: np.ndarray) -> np.ndarray:
        """NB means of codes laid out as :meth:`_codes` gives them (latent code, then log library size): the
        decoder's proportions times the library (float64, cells x genes)."""
        code = torch.from_numpy(codes[:, :-1].astype(np.float32)).to(self._device)
        return np.exp(codes[:, -1:]) * self._decoder(code).cpu().numpy().astype(np.float64)

    def decode_counts(self, codes: np.ndarray, count_rng: np.random.Generator) -> np.ndarray:
        """Raw counts of codes (as :meth:`decode_means` takes them): one negative binomial draw per NB mean from
        ``count_rng``. Generation decodes the flow's codes with it; the diagnosis benchmarks decode the encoder's."""
        theta = self._decoder.log_theta.detach().exp().cpu().numpy().astype(np.float64)[None, :]
        mean = self.decode_means(codes)
        return count_rng.negative_binomial(theta, theta / (theta + mean))

    def _sample_chunk(self, n, labels, rng):
        self._require_fitted()
        return self.generate_counts(self.type_index(labels, n, rng), *self._streams)

    @torch.no_grad()
    def encode(self, adata: ad.AnnData) -> np.ndarray:
        """The autoencoder's codes of cells (raw counts, training genes), cells x ``latent_dim``."""
        self._require_fitted()
        check_genes(self, adata)
        X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
        return self._codes(X, self._device)[:, :-1]

    # -- state ------------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        self._require_fitted()

        def cpu(module: nn.Module) -> dict[str, torch.Tensor]:
            return {k: v.detach().cpu() for k, v in module.state_dict().items()}

        return {
            "encoder": cpu(self._encoder),
            "decoder": cpu(self._decoder),
            "velocity": cpu(self._velocity),
            "n_genes": self._decoder.n_genes,
            "n_types": self._velocity.n_types,
            "code_mean": torch.from_numpy(self._code_mean),
            "code_sd": torch.from_numpy(self._code_sd),
            "cluster_frequencies": None
            if self._cluster_frequencies is None
            else torch.from_numpy(self._cluster_frequencies),
        }

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        p, dev = self.params, resolve_device(device)
        n_genes = int(state["n_genes"])
        self._encoder = CountEncoder(n_genes, widths=p["encoder_layers"], latent_dim=p["latent_dim"]).to(dev)
        self._decoder = CountDecoder(n_genes, widths=p["decoder_layers"], latent_dim=p["latent_dim"]).to(dev)
        self._velocity = VelocityNet(
            p["latent_dim"] + 1,
            n_types=int(state["n_types"]),
            width=p["flow_width"],
            blocks=p["flow_blocks"],
            embedding_dim=p["embedding_dim"],
        ).to(dev)
        for name in ("encoder", "decoder", "velocity"):
            getattr(self, f"_{name}").load_state_dict(state[name])
            getattr(self, f"_{name}").eval()
        self._code_mean, self._code_sd = state["code_mean"].numpy(), state["code_sd"].numpy()
        frequencies = state.get("cluster_frequencies")
        self._cluster_frequencies = None if frequencies is None else frequencies.numpy()
        self._device = dev
