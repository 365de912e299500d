"""The model kit's specs (scsynth_core.models.specs): plain data about every registered model, read by the config
check without importing torch, and the same data the model classes use."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from scsynth_core.models import available_models, get_model_class
from scsynth_core.models.specs import FLAGS, SPECS, model_spec


def _model_class(name: str):
    try:
        return get_model_class(name)
    except ImportError as exc:  # a family whose framework (torch, scvi-tools) is not installed here
        pytest.skip(f"model '{name}' cannot be imported: {exc}")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_registered_class_carries_its_specs_flags(name):
    spec, klass = SPECS[name], _model_class(name)
    assert klass.name == name and f"{klass.__module__}:{klass.__qualname__}" == spec.target
    assert {flag: getattr(klass, flag) for flag in FLAGS} == {flag: getattr(spec, flag) for flag in FLAGS}


def test_flags_known_answers():
    """The papers' facts the experiments rely on (docs/models.md): which models condition on clusters, which
    generate counts, which have a latent code to score."""
    assert sorted(n for n, s in SPECS.items() if s.conditional) == ["activa", "cscgan", "latentflow", "upsample"]
    assert sorted(n for n, s in SPECS.items() if s.representation == "counts") == [
        "latentflow",
        "noise",
        "scdbm",
        "scvi_posterior",
        "scvi_prior",
        "upsample",
    ]
    assert {n: s.latent_param for n, s in SPECS.items() if s.latent_param} == {
        "betatcvae": "latent_dim",
        "pca": "n_latent",
        "vae": "latent_dim",
    }
    assert sorted(SPECS) == available_models()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_spec_declares_exactly_its_presets_hyperparameters_and_the_class_uses_them(name):
    """One source of truth: the class's presets are the spec's, and the declared types cover every preset key."""
    spec, klass = SPECS[name], _model_class(name)
    assert klass.spec is spec and klass.presets == spec.presets
    assert {"paper", "workstation", "demo"} <= set(spec.presets)
    for preset, values in spec.presets.items():
        assert set(values) == set(spec.params), preset
        assert spec.settings(preset, {}) == klass(preset).params  # the presets pass their own checks, unchanged


def test_a_range_is_checked_where_it_is_declared():
    """Known answers of the declarations: the value at the edge of a range passes, the next one fails."""
    from scsynth_core.errors import ConfigError

    scgan = SPECS["scgan"]
    assert scgan.settings("demo", {"batch_size": 2, "beta1": 0.0})["batch_size"] == 2
    for key, bad, words in (
        ("batch_size", 1, "an integer >= 2"),
        ("beta1", 1.0, "a number in [0, 1)"),
        ("monitor_every", -1, "an integer >= 0"),
        ("select", "first", "one of best, last"),
    ):
        with pytest.raises(ConfigError, match=rf"^model 'scgan': {key} must be {re.escape(words)}, got "):
            scgan.settings("demo", {key: bad})
    assert SPECS["michigan"].settings("demo", {"vae": {"epochs": 3}})["vae"]["epochs"] == 3
    with pytest.raises(ConfigError, match=r"^model 'betatcvae': epochs must be an integer >= 1, got 0$"):
        SPECS["michigan"].settings("demo", {"vae": {"epochs": 0}})  # the inner beta-TCVAE, without torch


def test_unknown_model_is_one_line_listing_the_known():
    from scsynth_core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^unknown model 'gan' \(available: activa, betatcvae, "):
        model_spec("gan")


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter, then a check that it imported neither torch nor scvi-tools."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        loaded = sorted(m for m in ("torch", "scvi", "lightning") if m in sys.modules)
        assert not loaded, f"imported {loaded}"
        print("torch-free")
    """)
    return subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=60)


def test_conditional_models_reads_flags_without_importing_torch():
    done = _run_without_torch("""
        from scsynth_core.config import conditional_models
        assert conditional_models(["scgan", "cscgan", "activa", "noise"]) == ["cscgan", "activa"]
    """)
    assert done.returncode == 0 and "torch-free" in done.stdout, done.stderr


#: One bad value per registered model (a negative size, a word for a number, an unknown choice).
BAD = {
    "upsample": ("anything", 1),
    "noise": ("shape_max", -1),
    "scgan": ("latent_dim", -1),
    "cscgan": ("critic_head", "concatenate"),
    "activa": ("margin", "ten"),
    "vae": ("tc_form", "kim"),
    "betatcvae": ("epochs", -1),
    "wgangp": ("noise_dim", 0),
    "michigan": ("codes", "median"),
    "scdbm": ("hidden_sizes", [4, -2]),
    "pca": ("n_latent", "ten"),
    "gmm": ("covariance_type", "banded"),
    "scvi_posterior": ("n_latent", -1),
    "scvi_prior": ("library", "empirical"),
    "latentflow": ("guidance", True),
}


def test_config_check_rejects_a_bad_value_of_every_model_without_importing_torch():
    """``snakemake -n`` runs check_config: every model's hyperparameters are checked from the specs alone."""
    assert set(BAD) == set(SPECS)
    done = _run_without_torch(f"""
        from scsynth_core.config import check_config
        from scsynth_core.errors import ConfigError
        for model, (key, value) in {BAD!r}.items():
            config = {{"experiments": ["realism"], "realism": {{"models": [model], "datasets": []}},
                       "models": {{model: {{"preset": "demo", "params": {{key: value}}}}}}}}
            try:
                check_config(config, {{}})
            except ConfigError as exc:
                message = str(exc)
                assert message.startswith(f"config: models.{{model}}: model '") and key in message, message
                assert "\\n" not in message
            else:
                raise AssertionError(f"{{model}}: {{key}}={{value!r}} passed")
        check_config({{"experiments": [], "models": {{m: {{"preset": "demo"}} for m in {sorted(BAD)!r}}}}}, {{}})
    """)
    assert done.returncode == 0 and "torch-free" in done.stdout, done.stderr
