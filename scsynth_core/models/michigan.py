"""WGAN-GP and MichiGAN of MichiGAN's comparison (Yu & Welch 2021, Genome Biology 22:158, Methods "Wasserstein
GAN", "MichiGAN"; Gulrajani et al. 2017; Miyato & Koyama 2018): ``wgangp`` is the unconditional GAN, ``michigan``
a WGAN-GP conditioned on a beta-TCVAE's disentangled codes through a projection critic, both in ``log1p`` space.

The networks are scGAN's (:mod:`scsynth_core.models.scgan`) configured as the reference (welch-lab/MichiGAN).
Departures from it (kept as options), the two training phases, generation and saved files: docs/models.md,
"WGAN-GP and MichiGAN".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scsynth_core.errors import ConfigError
from scsynth_core.models.base import GenerativeModel, get_model_class
from scsynth_core.models.batches import EpochBatches
from scsynth_core.models.capabilities import CodeConditioned, Encodes, NoiseInputs
from scsynth_core.models.monitors import held_out_monitor
from scsynth_core.models.scgan import (
    Critic,
    Generator,
    critic_loss,
    generate_csr,
    generator_loss,
)
from scsynth_core.models.training import (
    TrainingLoop,
    TrainingTask,
    array_digest,
    merge_histories,
    resolve_device,
    seed_everything,
)
from scsynth_core.models.vae import (
    TF_BN_EPS,
    TF_BN_MOMENTUM,
    VAE,
    BetaTCVAE,
    check_genes,
    epoch_plan,
    hidden_activations,
    log1p_rows,
)

if TYPE_CHECKING:
    import anndata as ad

LOSS_COLUMNS = ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty")


class _WGANTask(TrainingTask):
    """MichiGAN's (code-conditioned) WGAN-GP step for :class:`~scsynth_core.models.training.TrainingLoop`."""

    generator_names = ("generator",)
    representation = "log1p"

    def __init__(
        self,
        model: WGANGP,
        X,
        train_rows: np.ndarray,
        generator: Generator,
        critic: Critic,
        *,
        codes: tuple[np.ndarray, np.ndarray] | None,
        rng: np.random.Generator,
        device: torch.device,
        per_epoch: int,
        monitor_rows: np.ndarray,
    ) -> None:
        p = model.params
        self.p, self.X, self.train_rows, self.device, self.per_epoch = p, X, train_rows, device, per_epoch
        self.generator, self.critic = generator, critic
        self.modules = {"generator": generator, "critic": critic}
        self.optimizers = {"generator": model._optimizer(generator), "critic": model._optimizer(critic)}
        self.batches = EpochBatches(len(train_rows), p["batch_size"], rng)
        self.code_mu = self.code_sd = None
        if codes is not None:
            self.code_mu = torch.as_tensor(codes[0], dtype=torch.float32, device=device)
            self.code_sd = torch.exp(0.5 * torch.as_tensor(codes[1], dtype=torch.float32, device=device))
        self.sample_codes = p.get("codes") == "sample"
        self.monitor_rows = monitor_rows
        self._generator_params, self._critic_params = list(generator.parameters()), list(critic.parameters())

    def _codes(self, rows: np.ndarray) -> torch.Tensor | None:
        if self.code_mu is None:
            return None
        index = torch.from_numpy(rows).to(self.device)
        mu = self.code_mu[index]
        return mu + self.code_sd[index] * torch.randn_like(mu) if self.sample_codes else mu

    def _generate(self, code: torch.Tensor | None, n: int) -> torch.Tensor:
        noise = torch.randn(n, self.p["noise_dim"], device=self.device)
        return self.generator(noise if code is None else torch.cat([noise, code], dim=1))

    def _critic_step(self) -> dict[str, torch.Tensor]:
        rows = self.train_rows[self.batches.next()]
        real, code = log1p_rows(self.X, rows, self.device), self._codes(rows)
        with torch.no_grad():  # generator in training mode: batch statistics and dropout, as for its own step
            fake = self._generate(code, len(rows))
        terms = critic_loss(
            self.critic,
            real,
            fake,
            gp_weight=self.p["gp_weight"],
            labels=code,
            interpolation=self.p["gp_interpolation"],
        )
        optimizer = self.optimizers["critic"]
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward(inputs=self._critic_params)
        optimizer.step()
        return {
            "critic_loss": terms["loss"],
            "wasserstein": terms["wasserstein"],
            "gradient_penalty": terms["gradient_penalty"],
        }

    def _generator_step(self) -> torch.Tensor:
        if self.code_mu is None:
            code, n = None, self.p["batch_size"]
        else:  # the codes of another minibatch of cells
            rows = self.train_rows[self.batches.next()]
            code, n = self._codes(rows), len(rows)
        loss = generator_loss(self.critic, self._generate(code, n), code)
        optimizer = self.optimizers["generator"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=self._generator_params)
        optimizer.step()
        return loss

    def step(self, step: int) -> dict[str, torch.Tensor]:
        for _ in range(self.p["critic_iters"]):
            terms = self._critic_step()
        return terms | {"generator_loss": self._generator_step()}

    def log_columns(self, step: int) -> dict[str, Any]:
        return {"epoch": (step - 1) // self.per_epoch + 1}

    def generate(self, n: int, seed: int):
        """Cells for fresh noise and, for MichiGAN, the validation cells' posterior means."""
        noise = torch.randn(
            n, self.p["noise_dim"], device=self.device, generator=torch.Generator(self.device).manual_seed(seed)
        )
        if self.code_mu is not None:
            noise = torch.cat([noise, self.code_mu[torch.from_numpy(self.monitor_rows[:n]).to(self.device)]], dim=1)
        self.generator.eval()
        return generate_csr(self.generator, noise)

    def train_mode(self) -> None:
        self.generator.train(self.p["batchnorm_dropout"] == "active")
        self.critic.train()

    def state(self) -> dict[str, Any]:
        return {"batches": self.batches.state()}

    def load_state(self, state) -> None:
        self.batches.load(state["batches"])


class WGANGP(NoiseInputs, GenerativeModel):
    """Unconditional WGAN-GP of MichiGAN's comparison (docs/models.md).

    Hyperparameters (``paper`` preset): ``noise_dim`` 128, ``generator_layers`` [256, 512, 1024],
    ``critic_layers`` [1024, 512, 10], ``dropout`` 0.2, ``output_activation`` "relu" | "linear",
    ``batchnorm_dropout`` "active" | "inert", ``batch_size`` 32, ``critic_iters`` 5, ``gp_weight`` 10,
    ``gp_interpolation`` "per_cell" | "per_batch", ``learning_rate`` 1e-4, ``beta1`` 0.9, ``beta2`` 0.999,
    ``epochs`` 1000 (generator steps = epochs x ``n // batch_size``; ``fit(max_steps=...)`` caps them),
    ``log_every`` 100 and ``checkpoint_every`` 1000 generator steps. ``workstation``: Adam 3e-4 with betas
    (0.5, 0.9), 3 critic steps, at most 3,000 generator steps or 10 minutes, a weight average of 0.99 and the best
    weights by the realism monitor (every 250 steps). ``demo``: 50 epochs.
    """

    name = "wgangp"  # presets and hyperparameter types: scsynth_core.models.specs.michigan

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._generator: Generator | None = None
        self._device = torch.device("cpu")

    @property
    def code_dim(self) -> int:
        return int(self.params.get("code_dim", 0))

    # -- networks ---------------------------------------------------------------------------------------------
    def _build_generator(self, n_genes: int, device: torch.device) -> Generator:
        p = self.params
        generator = Generator(
            n_genes,
            latent_dim=p["noise_dim"] + self.code_dim,
            widths=p["generator_layers"],
            activations=hidden_activations(len(p["generator_layers"])),
            dropout=p["dropout"],
            output=p["output_activation"],
            output_init="glorot",
            bn_momentum=TF_BN_MOMENTUM,
            bn_eps=TF_BN_EPS,
        )
        return generator.to(device)

    def _build_critic(self, n_genes: int, device: torch.device) -> Critic:
        p = self.params
        critic = Critic(
            n_genes,
            widths=p["critic_layers"],
            head="projection" if self.code_dim else "unconditional",
            code_dim=self.code_dim,
            code_projection=p.get("code_projection", "identity"),
            activations=hidden_activations(len(p["critic_layers"])),
            init="glorot",
        )
        return critic.to(device)

    def _optimizer(self, module: torch.nn.Module) -> torch.optim.Optimizer:
        p = self.params
        return torch.optim.Adam(module.parameters(), lr=p["learning_rate"], betas=(p["beta1"], p["beta2"]), eps=1e-8)

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        return self._train_gan(
            adata, seed=seed, device=device, max_steps=max_steps, progress=progress, checkpoint=checkpoint, codes=None
        )

    def _train_gan(
        self,
        adata,
        *,
        seed,
        device,
        max_steps,
        progress,
        checkpoint,
        codes: tuple[np.ndarray, np.ndarray] | None,
        minutes_used: float = 0.0,
    ) -> dict[str, list]:
        """The WGAN-GP loop; ``codes`` = (posterior means, log-variances) of the cells for MichiGAN.

        ``minutes_used``: training time already spent (MichiGAN's beta-TCVAE); ``max_minutes`` bounds the total.
        """
        p = self.params
        if p["max_minutes"] is not None:
            p = p | {"max_minutes": max(float(p["max_minutes"]) - minutes_used, 1e-3)}
        dev = resolve_device(device)
        X, per_epoch, total = epoch_plan(self, adata, max_steps)
        n_cells, n_genes = X.shape
        monitor, rows, train_rows = held_out_monitor(p, X, seed=seed)
        rng = seed_everything(seed)
        generator, critic = self._build_generator(n_genes, dev), self._build_critic(n_genes, dev)
        task = _WGANTask(
            self,
            X,
            train_rows,
            generator,
            critic,
            codes=codes,
            rng=rng,
            device=dev,
            per_epoch=per_epoch,
            monitor_rows=rows,
        )
        identity = {"shape": [n_cells, n_genes], "codes": None if codes is None else array_digest(*codes)}
        loop = TrainingLoop(
            self.name,
            p,
            max_steps=total,
            rng=rng,
            monitor=monitor,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            identity=identity,
        )
        history = loop.run(task)
        self.training_summary = loop.summary
        self._generator, self._device = generator.eval(), dev
        return history

    # -- generation -------------------------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self._generator is None:
            raise ConfigError(f"model '{self.name}' is not fitted: call fit() or load() first")

    def _start_sampling(self, seed: int) -> None:
        # Independent streams for noise, resampled rows and posterior draws: the cells of a seed do not depend
        # on how ``sample`` splits them into chunks.
        self._streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]

    def noise_of(self, n_cells: int, *, seed: int = 0) -> np.ndarray:
        """The noise vectors behind the cells of ``sample(n_cells, seed=seed)`` (n_cells x noise_dim; the same
        stream ``sample`` draws from, whatever its chunk size). The code-data comparison reads a WGAN-GP's first
        noise dims as its "codes" (Yu & Welch 2021, Fig. 4)."""
        self._start_sampling(seed)
        return self._streams[0].standard_normal((int(n_cells), self.params["noise_dim"]), dtype=np.float32)

    def _noise(self, n: int) -> torch.Tensor:
        noise = self._streams[0].standard_normal((n, self.params["noise_dim"]), dtype=np.float32)
        return torch.from_numpy(noise).to(self._device)

    def _sample_chunk(self, n, labels, rng):
        self._require_fitted()
        return generate_csr(self._generator, self._noise(n))

    # -- state ------------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "generator": {k: v.detach().cpu() for k, v in self._generator.state_dict().items()},
            "n_genes": self._generator.n_genes,
        }

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        dev = resolve_device(device)
        generator = self._build_generator(int(state["n_genes"]), dev)
        generator.load_state_dict(state["generator"])
        self._generator, self._device = generator.eval(), dev


class MichiGAN(CodeConditioned, Encodes, WGANGP):
    """MichiGAN: beta-TCVAE codes + a code-conditioned WGAN-GP with a projection critic (docs/models.md).

    Hyperparameters: WGAN-GP's (``noise_dim`` 118) plus ``code_dim`` 10, ``codes`` "mean" | "sample",
    ``code_projection`` "identity" | "learned", ``vae`` (dict of overrides for the inner ``betatcvae``, which uses
    this model's preset; given overrides are added to the preset's) and ``vae_path`` (a saved beta-TCVAE to use
    instead of training one). Presets (:mod:`scsynth_core.models.specs.michigan`): ``paper``; ``workstation``
    (the GAN's measured settings, ``GAN_WORKSTATION``, and a 25-epoch beta-TCVAE at lr 1e-3 so the GAN gets the
    10 minutes); ``demo``.
    """

    name = "michigan"

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)  # ``vae`` overrides add to the preset's (specs.kit.preset_params)
        self._vae: VAE | None = None
        self._code_mu: np.ndarray | None = None
        self._code_logvar: np.ndarray | None = None
        self._given_vae: VAE | None = None

    def _inner_vae(self) -> BetaTCVAE:
        return BetaTCVAE(self.preset, **(self.params["vae"] | {"latent_dim": self.code_dim}))

    @property
    def vae(self) -> VAE:
        """The beta-TCVAE whose codes condition the generator."""
        if self._vae is None:
            raise ConfigError(f"model '{self.name}' is not fitted: call fit() or load() first")
        return self._vae

    # -- training ---------------------------------------------------------------------------------------------
    def fit(self, adata: ad.AnnData, *, vae: VAE | None = None, **kwargs) -> dict[str, list]:
        """Train (see :meth:`GenerativeModel.fit`); ``vae``: a fitted beta-TCVAE on the same genes to take the
        codes from instead of training one."""
        self._given_vae = vae
        try:
            return super().fit(adata, **kwargs)
        finally:
            self._given_vae = None

    def _check_vae(self, vae, adata, where: str) -> VAE:
        if not isinstance(vae, VAE):
            raise ConfigError(
                f"model '{self.name}': {where} is a '{getattr(vae, 'name', type(vae).__name__)}' "
                "model, not a vae/betatcvae"
            )
        if vae.code_dim != self.code_dim:
            raise ConfigError(
                f"model '{self.name}': {where} has {vae.code_dim} latent dims, code_dim is {self.code_dim}"
            )
        check_genes(vae, adata)
        return vae

    def _obtain_vae(self, adata, *, seed, device, progress, checkpoint) -> tuple[VAE, dict[str, list] | None]:
        if self._given_vae is not None:
            return self._check_vae(self._given_vae, adata, "the given vae"), None
        if self.params["vae_path"] is not None:
            from scsynth_core.models.base import load_model

            return self._check_vae(
                load_model(self.params["vae_path"], device=device), adata, f"vae_path {self.params['vae_path']}"
            ), None
        vae = self._inner_vae()
        history = vae.fit(
            adata,
            seed=seed,
            device=device,
            progress=progress,
            checkpoint=None if checkpoint is None else f"{checkpoint}.vae",
        )
        return vae, history

    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        vae, vae_history = self._obtain_vae(adata, seed=seed, device=device, progress=progress, checkpoint=checkpoint)
        mu, logvar = vae.posterior(adata)
        vae_minutes = 0.0 if vae_history is None or not vae_history.get("time_s") else vae_history["time_s"][-1] / 60
        gan_history = self._train_gan(
            adata,
            seed=seed,
            device=device,
            max_steps=max_steps,
            progress=progress,
            checkpoint=checkpoint,
            codes=(mu, logvar),
            minutes_used=vae_minutes,
        )
        self._vae, self._code_mu, self._code_logvar = vae, mu, logvar
        phases = ([("vae", vae_history)] if vae_history is not None else []) + [("gan", gan_history)]
        return merge_histories(phases)

    # -- codes and generation ---------------------------------------------------------------------------------
    def encode(self, adata: ad.AnnData, *, sample: bool = False, seed: int = 0) -> np.ndarray:
        """The beta-TCVAE's codes of cells (raw counts, training genes): posterior means or samples."""
        return self.vae.encode(adata, sample=sample, seed=seed)

    def _code_centre(self) -> np.ndarray:
        return self._code_mu.mean(axis=0).astype(np.float32)  # the aggregate posterior's mean

    def _draw_codes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Codes from the aggregate posterior: training cells resampled, their mean or a posterior draw."""
        self._require_fitted()
        rows = self._streams[1].integers(0, self._code_mu.shape[0], size=n)
        codes = self._code_mu[rows]
        if self.params["codes"] == "sample":
            codes = codes + np.exp(0.5 * self._code_logvar[rows]) * self._streams[2].standard_normal(codes.shape)
        return codes.astype(np.float32)

    def _decode(self, codes: np.ndarray, rng: np.random.Generator, shared: bool):
        self._require_fitted()
        n = codes.shape[0]
        noise = self._noise(1 if shared else n).expand(n, -1)
        z = torch.cat([noise, torch.from_numpy(np.ascontiguousarray(codes)).to(self._device)], dim=1)
        return generate_csr(self._generator, z)

    # -- state ------------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        vae = self.vae
        return super()._get_state() | {
            "code_mean": torch.from_numpy(self._code_mu),
            "code_logvar": torch.from_numpy(self._code_logvar),
            "vae": {
                "model": vae.name,
                "preset": vae.preset,
                "params": dict(vae.params),
                "n_train": vae.n_train,
                "seed": vae.seed,
                "state": vae._get_state(),
            },
        }

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        super()._set_state(state, device=device)
        inner = state["vae"]
        vae = get_model_class(inner["model"])(inner["preset"], **inner["params"])
        vae.var_names, vae.n_train, vae.seed = self.var_names, inner["n_train"], inner["seed"]
        vae._set_state(inner["state"], device=device)
        self._vae = vae
        self._code_mu = state["code_mean"].numpy()
        self._code_logvar = state["code_logvar"].numpy()
