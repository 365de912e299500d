"""Every registered model checks its hyperparameters when it is constructed: a bad value is a one-line ConfigError
naming the model and the key, before any data are read; numbers YAML leaves as strings (``1e-4``) are accepted."""

from __future__ import annotations

import pytest

from scsynth_core.config import check_config
from scsynth_core.errors import ConfigError
from scsynth_core.models import available_models, get_model_class
from scsynth_core.models.params import check_int_list, check_number, check_positive_int
from scsynth_core.models.training import LOOP_DEFAULTS

#: Per model, clearly bad values of a few keys: a negative integer, a word where a number belongs, an unknown choice.
BAD: dict[str, list[tuple[str, object]]] = {
    "upsample": [("shape_max", 1.0)],  # no hyperparameters at all: any key is unknown
    "noise": [("shape_max", -1), ("shape_max", "ten"), ("scale_max", -1)],
    "pca": [("n_latent", -1), ("n_latent", "ten"), ("scale_genes", "yes")],
    "gmm": [
        ("n_pcs", -1),
        ("reg_covar", "ten"),
        ("covariance_type", "banded"),
        ("n_components", "auto"),
        ("covariance_types", ["full", "banded"]),
        ("bic_components", [2, -1]),
    ],
    "scgan": [("latent_dim", -1), ("learning_rate", "ten"), ("generator_layers", [16, -2])],
    "cscgan": [("batch_size", -1), ("beta1", "ten"), ("critic_head", "concatenate")],
    "activa": [
        ("latent_dim", -1),
        ("margin", "ten"),
        ("update", "sometimes"),
        ("output_lsn", "yes"),
        ("output_threshold", "ten"),
    ],
    "vae": [("latent_dim", -1), ("beta", "ten"), ("tc_form", "kim"), ("beta", True)],
    "betatcvae": [("epochs", -1), ("learning_rate", "ten"), ("batchnorm_dropout", "sometimes")],
    "wgangp": [("noise_dim", -1), ("gp_weight", "ten"), ("output_activation", "lsn")],
    "michigan": [("code_dim", -1), ("learning_rate", "ten"), ("codes", "median")],
    "scdbm": [("batch_size", -1), ("learning_rate", "ten"), ("sampler", "metropolis"), ("hidden_sizes", [4, -2])],
    "scvi_posterior": [("n_latent", -1), ("learning_rate", "ten"), ("gene_likelihood", "gaussian")],
    "scvi_prior": [("n_hidden", -1), ("dropout_rate", "ten"), ("library", "empirical")],
    "latentflow": [("flow_blocks", -1), ("learning_rate", "ten"), ("guidance", True)],
}


def _model_class(name: str):
    try:
        return get_model_class(name)
    except ImportError as exc:  # a family whose framework (torch, scvi-tools) is not installed here
        pytest.skip(f"model '{name}' cannot be imported: {exc}")


def test_every_registered_model_has_bad_value_cases():
    assert set(BAD) == set(available_models())


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [(n, k, v) for n, cases in BAD.items() for k, v in cases],
    ids=lambda x: repr(x) if not isinstance(x, str) else x,
)
def test_a_bad_value_fails_at_construction_naming_the_key(name, key, value):
    klass = _model_class(name)
    with pytest.raises(ConfigError) as error:
        klass("demo", **{key: value})
    message = str(error.value)
    assert message.startswith(f"model '{name}': ") and key in message and "\n" not in message
    if key in klass.presets["demo"]:
        assert repr(value) in message  # says what it got


@pytest.mark.parametrize("name", sorted(BAD))
def test_numbers_in_scientific_notation_are_accepted_as_yaml_leaves_them(name):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; every family takes it as the number, as an int where an int
    is expected. (The training-loop keys are checked by training.check_loop_params, which takes numbers only.)"""
    klass = _model_class(name)
    paper = klass("paper").params
    numeric = {
        k: v
        for k, v in paper.items()
        if k not in LOOP_DEFAULTS and not isinstance(v, bool) and isinstance(v, (int, float))
    }
    for key, value in numeric.items():
        params = klass("paper", **{key: f"{value:e}"}).params
        assert params[key] == value and type(params[key]) is type(value), key


def test_vae_and_scdbm_read_a_learning_rate_string_alike():
    """The issue's example: vae accepted "1e-4" while scdbm rejected it; both take it, and both reject a word."""
    for name in ("vae", "scdbm"):
        klass = _model_class(name)
        assert klass("demo", learning_rate="1e-4").params["learning_rate"] == 1e-4
        with pytest.raises(ConfigError, match=f"model '{name}': learning_rate must be a number"):
            klass("demo", learning_rate="fast")


def test_shared_checks_known_answers():
    p = {"n": "1e3", "m": 2.0, "x": "2.5e-1", "w": [8.0, 4]}
    check_positive_int("toy", p, "n")
    check_positive_int("toy", p, "m")
    check_number("toy", p, "x", low=0.0, high=1.0, high_open=True)
    check_int_list("toy", p, "w")
    assert p == {"n": 1000, "m": 2, "x": 0.25, "w": [8, 4]} and type(p["m"]) is int
    for bad, check in (
        (2.5, check_positive_int),
        (True, check_positive_int),
        ("0.1", check_number),
        (True, check_number),
        (float("nan"), check_number),
        (1.0, check_number),
    ):
        kwargs = {"low": 0.0, "high": 1.0, "high_open": True} if check is check_number else {}
        with pytest.raises(ConfigError, match=r"^model 'toy': v must be "):
            check("toy", {"v": bad}, "v", **kwargs)
    with pytest.raises(ConfigError, match=r"v must be a number in \(0, 1\], got 0"):
        check_number("toy", {"v": 0}, "v", low=0.0, high=1.0, low_open=True)
    with pytest.raises(ConfigError, match=r"v must be a list of 2 integers >= 0, got \[1\]"):
        check_int_list("toy", {"v": [1]}, "v", minimum=0, length=2)
    none = {"v": None}
    check_positive_int("toy", none, "v", optional=True)
    with pytest.raises(ConfigError, match="an integer >= 1, got None"):
        check_positive_int("toy", none, "v")


def test_the_workflow_config_check_reports_a_bad_value():
    with pytest.raises(ConfigError, match=r"^config: models\.noise: model 'noise': shape_max must be a number >= 0"):
        check_config({"experiments": [], "models": {"noise": {"params": {"shape_max": -1}}}}, {})
