"""WGAN-GP and MichiGAN (Yu & Welch 2021): scGAN pieces configured as MichiGAN's networks, code conditioning,
training mechanics (determinism, resume, save/load), code sampling, traversals, latent arithmetic and the
preservation of beta-TCVAE code-factor correlations by generated cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from factor_data import two_factor_counts
from scsynth_core.errors import ConfigError
from scsynth_core.models import MODELS, load_model
from scsynth_core.models.michigan import WGANGP, MichiGAN
from scsynth_core.models.scgan import Critic, Generator, critic_loss, generate_csr, gradient_penalty
from scsynth_core.models.vae import BetaTCVAE

TINY_GAN = {
    "generator_layers": [16, 32],
    "critic_layers": [32, 3],
    "noise_dim": 5,
    "batch_size": 16,
    "log_every": 1,
    "checkpoint_every": 5,
    "epochs": 1,
}
TINY_VAE = {
    "encoder_layers": [32, 16],
    "decoder_layers": [16, 32],
    "batch_size": 16,
    "epochs": 2,
    "log_every": 1,
    "checkpoint_every": 5,
}


@pytest.fixture(scope="module")
def tiny():
    return two_factor_counts()


def _fit_michigan(data, *, seed=0, checkpoint=None, max_steps=None, vae=None, **overrides):
    model = MichiGAN("demo", **(TINY_GAN | {"code_dim": 3, "vae": TINY_VAE} | overrides))
    history = model.fit(
        data, seed=seed, device="cpu", progress=False, vae=vae, checkpoint=checkpoint, max_steps=max_steps
    )
    return model, history


def _weights(model):
    state = {f"gen.{k}": v.clone() for k, v in model._generator.state_dict().items()}
    if isinstance(model, MichiGAN):
        state |= {f"enc.{k}": v.clone() for k, v in model.vae._encoder.state_dict().items()}
    return state


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------ presets and registry
def test_registry_and_presets():
    assert MODELS["wgangp"] is WGANGP and MODELS["michigan"] is MichiGAN
    paper = MichiGAN("paper").params
    assert (paper["noise_dim"], paper["code_dim"], WGANGP("paper").params["noise_dim"]) == (118, 10, 128)
    assert paper["generator_layers"] == [256, 512, 1024] and paper["critic_layers"] == [1024, 512, 10]
    assert (paper["batch_size"], paper["critic_iters"], paper["gp_weight"], paper["epochs"]) == (32, 5, 10.0, 1000)
    assert (paper["learning_rate"], paper["beta1"], paper["beta2"], paper["dropout"]) == (1e-4, 0.9, 0.999, 0.2)
    assert (paper["codes"], paper["code_projection"], paper["gp_interpolation"], paper["batchnorm_dropout"]) == (
        "mean",
        "identity",
        "per_cell",
        "active",
    )
    assert MichiGAN.representation == WGANGP.representation == "log1p" and not MichiGAN.conditional
    with pytest.raises(ConfigError, match="code_dim"):
        MichiGAN("demo", critic_layers=[64, 8])  # identity projection needs a 10-wide last critic layer
    assert MichiGAN("demo", critic_layers=[64, 8], code_projection="learned").params["critic_layers"] == [64, 8]
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        MichiGAN("demo", vae={"no_such_thing": 1})  # the inner beta-TCVAE is checked up front
    with pytest.raises(ConfigError, match="latent_dim"):
        MichiGAN("demo", vae={"latent_dim": 4})
    for bad in ({"codes": "median"}, {"gp_interpolation": "none"}, {"output_activation": "lsn"}, {"beta2": 1.0}):
        with pytest.raises(ConfigError):
            MichiGAN("demo", **bad)


# ------------------------------------------------------------------------------------- the shared GAN pieces
def test_code_conditioned_projection_critic():
    torch.manual_seed(0)
    x, c = torch.rand(6, 12), torch.randn(6, 3)
    critic = Critic(12, widths=(8, 3), head="projection", code_dim=3, activations=("leaky_relu", "relu"), init="glorot")
    h = torch.relu(critic.linears[1](torch.nn.functional.leaky_relu(critic.linears[0](x), 0.2)))
    assert torch.allclose(critic(x, c), critic.output(h).squeeze(1) + (c * h).sum(1), atol=1e-6)
    learned = Critic(12, widths=(8, 4), head="projection", code_dim=3, code_projection="learned")
    h = torch.relu(learned.linears[1](torch.relu(learned.linears[0](x))))
    assert torch.allclose(
        learned(x, c), learned.output(h).squeeze(1) + ((c @ learned.code_matrix) * h).sum(1), atol=1e-6
    )
    with pytest.raises(ConfigError, match="identity"):
        Critic(12, widths=(8, 4), head="projection", code_dim=3)
    with pytest.raises(ConfigError, match="codes"):
        critic(x)
    with pytest.raises(ConfigError):
        Critic(12, widths=(8, 3), head="projection", code_dim=3, n_classes=2)


@pytest.mark.parametrize("interpolation,rows", [("per_cell", 6), ("per_batch", 1)])
def test_gradient_penalty_interpolation(interpolation, rows):
    """Per-cell u (Gulrajani et al.) or one u for the batch (MichiGAN's reference)."""
    torch.manual_seed(0)
    critic = Critic(12, widths=(8, 3), head="projection", code_dim=3)
    real, fake, c = torch.rand(6, 12), torch.rand(6, 12) + 1, torch.randn(6, 3)
    torch.manual_seed(1)
    terms = critic_loss(critic, real, fake, gp_weight=10.0, labels=c, interpolation=interpolation)
    torch.manual_seed(1)
    u = torch.rand(rows, 1)
    expected = gradient_penalty(critic, real + u * (fake - real), c)
    assert terms["gradient_penalty"].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ConfigError):
        critic_loss(critic, real, fake, gp_weight=10.0, labels=c, interpolation="none")


def test_generator_options_and_sparse_generation():
    torch.manual_seed(0)
    gen = Generator(
        50,
        latent_dim=7,
        widths=(16, 32),
        activations=("leaky_relu", "relu"),
        dropout=0.2,
        output="relu",
        output_init="glorot",
        bn_momentum=0.01,
        bn_eps=1e-3,
    )
    z = torch.randn(40, 7)
    assert not torch.equal(gen(z), gen(z))  # dropout in training mode
    gen.eval()
    dense = gen(z).detach()
    assert torch.equal(dense, gen(z)) and dense.min() >= 0 and (dense == 0).any()
    cells = generate_csr(gen, z)
    np.testing.assert_allclose(cells.toarray(), dense.numpy(), rtol=1e-5, atol=1e-6)  # no LSN scaling
    linear = Generator(50, latent_dim=7, widths=(16,), output="linear").eval()
    out = linear(z).detach()
    assert (out < 0).any()
    np.testing.assert_allclose(generate_csr(linear, z).toarray(), out.clamp_min(0).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError):
        Generator(50, widths=(16,), output="sigmoid")
    with pytest.raises(ConfigError):
        Generator(50, widths=(16, 8), activations=("relu",))


# ------------------------------------------------------------------------------------------ training mechanics
def test_wgangp_trains_and_is_deterministic(tiny, tmp_path):
    params = TINY_GAN | {"critic_layers": [32, 10], "epochs": 3}
    model = WGANGP("demo", **params)
    history = model.fit(tiny, seed=0, device="cpu", progress=False)
    steps = 3 * (tiny.n_obs // 16)
    assert history["step"] == list(range(1, steps + 1)) and history["epoch"][-1] == 3
    assert set(history) >= {"critic_loss", "generator_loss", "wasserstein", "gradient_penalty", "time_s"}
    cells = model.sample(100, seed=2, batch_size=40)
    assert cells.shape == (100, tiny.n_vars) and cells.X.data.min() > 0 and "X_codes" not in cells.obsm
    assert (cells.X != model.sample(100, seed=2).X).nnz == 0 and (cells.X != model.sample(100, seed=3).X).nnz > 0
    # noise_of gives the inputs behind those cells (whatever the chunking): regenerate them directly
    noise = model.noise_of(100, seed=2)
    assert noise.shape == (100, model.params["noise_dim"])
    direct = generate_csr(model._generator, torch.from_numpy(noise))
    np.testing.assert_allclose(direct.toarray(), cells.X.toarray(), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "wgangp.pt")
    assert (load_model(tmp_path / "wgangp.pt").sample(100, seed=2, batch_size=40).X != cells.X).nnz == 0
    again = WGANGP("demo", **params)
    again.fit(tiny, seed=0, device="cpu", progress=False)
    assert _same(_weights(model), _weights(again))


def test_michigan_fit_sample_save_load(tiny, tmp_path):
    model, history = _fit_michigan(tiny)
    phases = history["phase"]
    assert phases == ["vae"] * phases.count("vae") + ["gan"] * phases.count("gan") and phases.count("gan") == 12
    assert history["loss"][0] is not None and history["critic_loss"][-1] is not None
    assert isinstance(model.vae, BetaTCVAE) and model.vae.params["beta"] == 10.0
    codes = model.encode(tiny)
    assert codes.shape == (tiny.n_obs, 3)

    cells = model.sample(120, seed=1, batch_size=50)
    assert cells.shape == (120, tiny.n_vars) and cells.X.data.min() > 0
    drawn = cells.obsm["X_codes"]
    # "mean" codes are resampled training posterior means (the aggregate posterior's support).
    assert all(np.any(np.all(codes == row, axis=1)) for row in drawn)
    assert (cells.X != model.sample(120, seed=1).X).nnz == 0 and (cells.X != model.sample(120, seed=2).X).nnz > 0
    given = model.generate_from_codes(drawn[:7], seed=5)
    np.testing.assert_array_equal(given.obsm["X_codes"], drawn[:7])

    model.save(tmp_path / "michigan.pt")
    payload = torch.load(tmp_path / "michigan.pt", weights_only=True)  # plain tensors and values only
    assert payload["state"]["vae"]["model"] == "betatcvae" and payload["state"]["code_mean"].shape == (200, 3)
    loaded = load_model(tmp_path / "michigan.pt", device="cpu")
    assert type(loaded) is MichiGAN and loaded.params == model.params
    assert (loaded.sample(120, seed=1, batch_size=50).X != cells.X).nnz == 0
    np.testing.assert_array_equal(loaded.encode(tiny), codes)

    # A given beta-TCVAE (object or file) is used as is, not retrained.
    vae_path = tmp_path / "tcvae.pt"
    model.vae.save(vae_path)
    reused, reused_history = _fit_michigan(tiny, vae=model.vae)
    assert set(reused_history["phase"]) == {"gan"} and reused.vae is model.vae
    assert _same(_weights(reused), _weights(model))  # same codes and seed: the same GAN
    from_file, _ = _fit_michigan(tiny, vae_path=str(vae_path))
    np.testing.assert_array_equal(from_file.encode(tiny), codes)
    sampled, _ = _fit_michigan(tiny, vae=model.vae, codes="sample")
    assert not all(np.any(np.all(codes == row, axis=1)) for row in sampled.sample(20, seed=0).obsm["X_codes"])


def test_traverse_holds_noise_and_other_codes(tiny):
    model, _ = _fit_michigan(tiny)
    base = model.encode(tiny)[3]
    cells = model.traverse(1, [-1.0, 0.5, 0.5, 2.0], base=base, seed=4)
    codes = cells.obsm["X_codes"]
    np.testing.assert_array_equal(codes[:, 1], [-1.0, 0.5, 0.5, 2.0])
    np.testing.assert_array_equal(np.delete(codes, 1, axis=1), np.tile(np.delete(base, 1), (4, 1)))
    dense = cells.X.toarray()
    assert np.array_equal(dense[1], dense[2])  # same code, same (shared) noise: the same cell
    assert not np.allclose(dense[0], dense[3])  # the traversed dim changes the cell
    # Without shared noise the same codes give different cells (the noise is part of the generator input).
    free = model.generate_from_codes(codes, seed=4).X.toarray()
    assert not np.array_equal(free[1], free[2])
    centre = model.traverse(0, [0.0]).obsm["X_codes"][0, 1:]
    np.testing.assert_allclose(centre, model.encode(tiny).mean(axis=0)[1:], rtol=1e-5, atol=1e-6)


def test_latent_arithmetic_codes_are_decoded(tiny):
    """MichiGAN predicts unseen type x condition cells by decoding arithmetic codes (metrics.latent)."""
    from scsynth_core.metrics.latent import delta_h, latent_arithmetic

    model, _ = _fit_michigan(tiny)
    z = model.encode(tiny)
    cell_type = np.where(tiny.obs["f1"] > 0.5, "B", "A")
    condition = np.array(["ctrl", "drug1", "drug2", "drug3"] * 50)
    held_out = (cell_type == "B") & (condition == "drug3")
    predicted = latent_arithmetic(
        z[~held_out], cell_type[~held_out], condition[~held_out], control_type="A", target_condition="drug3"
    )
    cells = model.generate_from_codes(predicted, seed=0)
    assert cells.n_obs == predicted.shape[0] and np.array_equal(cells.obsm["X_codes"], predicted.astype(np.float32))
    assert np.isfinite(delta_h(predicted, z[held_out]))


# -------------------------------------------------------------------------------------- code-data correlations
def test_generated_cells_keep_the_code_factor_relation():
    """Yu & Welch 2021 (code-data correlations): cells generated from beta-TCVAE codes carry the factors those
    codes encode. Generated cells get factors predicted by their k = 3 nearest real cells (PCA of log1p values);
    for each factor, the code dim most correlated with it in the real cells keeps a Spearman rho with the
    predicted factor within 0.15 of the beta-TCVAE's own generated cells (decoded from the same codes). An
    untrained generator has no such relation.

    Demo preset except for test-sized GAN networks (generator 64-128-256, critic 256-128-10) at lr 2e-4 for 2,000
    generator steps: measured rho (f1, f2) MichiGAN -0.89 / 0.87, beta-TCVAE decoder -0.96 / 0.98 (a code dim's
    sign is arbitrary); |rho| of the best code dim with the true factor in the real cells 0.97 / 0.98. Before the
    beta-TCVAE scaled its genes, the paper-sized networks needed longer on 500 cells (-0.83 / -0.71 after 2,000
    steps at lr 1e-4).
    """
    from sklearn.decomposition import PCA

    from scsynth_core.data.preprocess import to_representation
    from scsynth_core.metrics.disentanglement import code_factor_spearman, knn_factor_regression

    data = two_factor_counts(n_cells=500, n_genes=100, seed=1)
    factors = data.obs[["f1", "f2"]]
    small = {"generator_layers": [64, 128, 256], "critic_layers": [256, 128, 10], "learning_rate": 2e-4}
    model = MichiGAN("demo", vae={"epochs": 100}, **small)
    model.fit(data, seed=0, device="cpu", progress=False, max_steps=2000)
    rho_real = code_factor_spearman(model.encode(data), factors)  # factors x code dims
    best = rho_real.abs().idxmax(axis=1)
    real_log = to_representation(data.X, "log1p").toarray()
    pca = PCA(n_components=10, random_state=0).fit(real_log)
    real_pcs = pca.transform(real_log)

    def code_factor_rho(cells) -> pd.Series:
        predicted = knn_factor_regression(real_pcs, factors, pca.transform(cells.X.toarray()), k=3)
        rho = code_factor_spearman(cells.obsm["X_codes"], pd.DataFrame(predicted, columns=factors.columns))
        return pd.Series({f: rho.loc[f, best[f]] for f in factors.columns})

    cells = model.sample(500, seed=3)
    rho_gan = code_factor_rho(cells)
    rho_vae = code_factor_rho(model.vae.generate_from_codes(cells.obsm["X_codes"]))
    assert (rho_real.abs().max(axis=1) > 0.9).all(), rho_real  # the beta-TCVAE found both factors
    assert (rho_vae.abs() > 0.8).all(), rho_vae
    assert ((rho_gan - rho_vae).abs() <= 0.15).all(), (rho_vae, rho_gan)
    untrained = MichiGAN("demo", **(small | {"learning_rate": 0.0}))
    untrained.fit(data, seed=0, device="cpu", progress=False, max_steps=1, vae=model.vae)
    # (an untrained generator's cells can all share one neighbourhood: a constant prediction, rho NaN = none)
    assert (code_factor_rho(untrained.sample(500, seed=3)).fillna(0.0).abs() < rho_vae.abs() - 0.3).all()
