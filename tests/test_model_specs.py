"""The model kit's specs (scsynth_core.models.specs): plain data about every registered model, read by the config
check without importing torch, and the same data the model classes use."""

from __future__ import annotations

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
        "latentflow", "noise", "scdbm", "scvi_posterior", "scvi_prior", "upsample"]
    assert {n: s.latent_param for n, s in SPECS.items() if s.latent_param} == {
        "betatcvae": "latent_dim", "pca": "n_latent", "vae": "latent_dim"}
    assert sorted(SPECS) == available_models()


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
