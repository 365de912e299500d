"""The pieces of a model spec: declared hyperparameters (:class:`Param`), presets and flags (:class:`ModelSpec`).

Plain data and the torch-free checks of :mod:`scsynth_core.models.params`, so the workflow's config check reads and
checks every model without importing its framework, and the model classes check the same declarations when they
are constructed (docs/development.md, "Model kit").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from scsynth_core.errors import ConfigError
from scsynth_core.models import params as checks

#: The class flags a model class receives from its spec.
FLAGS = ("representation", "conditional", "labels_optional", "labels_by_filtering", "reads_rows", "latent_param")


@dataclass(frozen=True)
class Param:
    """One hyperparameter's type and range, checked by :meth:`check` (values are written back as plain types).

    ``kind``: ``int`` (>= ``minimum``), ``number`` (between ``low`` and ``high``, ends closed unless ``*_open``),
    ``choice`` (one of ``options``), ``choices`` (a non-empty list of ``options``), ``flag`` (true/false),
    ``ints`` (a non-empty list of ints >= ``minimum``, of ``length`` items where given), ``path`` (a file path),
    ``mapping`` (a dict of settings; overrides add to the preset's). ``optional``: null is accepted; ``also``:
    words accepted besides the kind (``"auto"``).
    """

    kind: str
    minimum: int = 1
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    also: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    length: int | None = None

    def check(self, model: str, params: dict[str, Any], key: str) -> None:
        """Raise a one-line :class:`ConfigError` naming ``model``, ``key``, the value and what is expected."""
        value = params[key]
        if self.kind == "int":
            checks.check_positive_int(model, params, key, minimum=self.minimum, optional=self.optional, also=self.also)
        elif self.kind == "number":
            checks.check_number(
                model,
                params,
                key,
                low=self.low,
                high=self.high,
                low_open=self.low_open,
                high_open=self.high_open,
                optional=self.optional,
                also=self.also,
            )
        elif self.kind == "choice":
            checks.check_choice(model, params, key, self.options)
        elif self.kind == "flag":
            checks.check_flag(model, params, key)
        elif self.kind == "ints":
            checks.check_int_list(model, params, key, minimum=self.minimum, length=self.length)
        elif self.kind == "choices":
            if not isinstance(value, (list, tuple)) or not value or any(v not in self.options for v in value):
                raise ConfigError(
                    f"model '{model}': {key} must be a non-empty list of {', '.join(self.options)}, got {value!r}"
                )
        elif self.kind == "path":
            if not (value is None and self.optional) and not isinstance(value, (str, PathLike)):
                raise ConfigError(
                    f"model '{model}': {key} must be a file path{' or null' if self.optional else ''}, got {value!r}"
                )
            params[key] = None if value is None else str(value)
        elif self.kind == "mapping":
            if not isinstance(value, dict):
                raise ConfigError(f"model '{model}': {key} must be a mapping of settings, got {value!r}")
        else:
            raise ValueError(f"unknown hyperparameter kind {self.kind!r}")


def integer(minimum: int = 1, *, optional: bool = False, also: tuple[str, ...] = ()) -> Param:
    """An integer >= ``minimum`` (e.g. 2 for batch sizes under batch normalisation)."""
    return Param("int", minimum=minimum, optional=optional, also=also)


def number(
    low: float | None = 0.0,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    also: tuple[str, ...] = (),
) -> Param:
    """A finite number in a range (default: >= 0)."""
    return Param("number", low=low, high=high, low_open=low_open, high_open=high_open, optional=optional, also=also)


def fraction(*, low_open: bool = False, high_open: bool = True) -> Param:
    """A number in [0, 1) unless told otherwise (dropout, Adam's betas)."""
    return number(0.0, 1.0, low_open=low_open, high_open=high_open)


def choice(options: tuple[str, ...]) -> Param:
    return Param("choice", options=tuple(options))


def choices(options: tuple[str, ...]) -> Param:
    return Param("choices", options=tuple(options))


def flag() -> Param:
    return Param("flag")


def integers(minimum: int = 1, *, length: int | None = None) -> Param:
    """A non-empty list of integers (layer widths)."""
    return Param("ints", minimum=minimum, length=length)


def path(*, optional: bool = True) -> Param:
    return Param("path", optional=optional)


def mapping() -> Param:
    return Param("mapping")


def preset_params(
    name: str, presets: Mapping[str, Mapping[str, Any]], preset: str, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The hyperparameters of ``presets[preset]`` updated by ``overrides``; an unknown preset or hyperparameter
    raises a :class:`ConfigError` naming model ``name`` and the known ones. A mapping override of a mapping
    value (MichiGAN's ``vae``) adds to the preset's mapping instead of replacing it."""
    if preset not in presets:
        raise ConfigError(f"model '{name}': unknown preset '{preset}' (available: {', '.join(presets)})")
    params = dict(presets[preset])
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ConfigError(
            f"model '{name}': unknown hyperparameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(params)) or 'none'})"
        )
    merged = {
        key: params[key] | value if isinstance(value, dict) and isinstance(params[key], dict) else value
        for key, value in overrides.items()
    }
    return params | merged


#: A family's checks across hyperparameters: ``rule(model, params, preset)`` raises a :class:`ConfigError`.
Rule = Callable[[str, dict[str, Any], str], None]


@dataclass(frozen=True)
class ModelSpec:
    """One registered model as plain data: its class (``"module:Class"``, imported only when the model is used),
    flags, presets and declared hyperparameters.

    ``representation``: what it trains on and generates (``counts``, ``lsn``, ``log1p``); ``conditional``: it
    generates cells of requested labels; ``labels_optional``: a conditional model that can also be fitted without
    labels; ``labels_by_filtering``: label-specific cells are holistic samples kept by a classifier (no imposed
    composition); ``reads_rows``: trains from cells whose matrix stays on disk; ``latent_param``: the
    hyperparameter that sizes its latent code, None where it has none (disentanglement needs one).
    ``presets``: name -> every hyperparameter's value (a family without a ``workstation`` preset gets the paper's);
    ``params``: name -> :class:`Param`, the same names as every preset; ``rules``: checks across hyperparameters.
    """

    name: str
    target: str
    representation: str
    conditional: bool = False
    labels_optional: bool = False
    labels_by_filtering: bool = False
    reads_rows: bool = False
    latent_param: str | None = None
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"paper": {}, "demo": {}})
    params: Mapping[str, Param] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        # Families whose paper settings already train in minutes on a CPU have no workstation preset of their own:
        # for them the workstation preset IS the paper's.
        if "paper" in self.presets and "workstation" not in self.presets:
            object.__setattr__(self, "presets", {**self.presets, "workstation": dict(self.presets["paper"])})

    def check(self, params: dict[str, Any], preset: str) -> None:
        """Check every declared hyperparameter in ``params`` (in place: plain types), then the rules."""
        for key, param in self.params.items():
            if key in params:
                param.check(self.name, params, key)
        for rule in self.rules:
            rule(self.name, params, preset)

    def settings(self, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The checked hyperparameters of ``preset`` with ``overrides``, as the model class would hold them."""
        params = preset_params(self.name, self.presets, preset, overrides)
        self.check(params, preset)
        return params
