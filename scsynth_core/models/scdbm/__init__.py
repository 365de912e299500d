"""scDBM (Treppner et al. 2021, Sci Rep 11:9403, Methods "Single-cell deep Boltzmann machine", eq. 3-9): a deep
Boltzmann machine with a negative-binomial visible layer, trained on raw counts, generating integer counts.

The model, the training (pretraining, fine-tuning, dispersion updates), sampling, where the reference code
(MTreppner/scDBM.jl) departs from the paper and the measurements behind each default: docs/models.md, "scDBM".

Modules: :mod:`~.nb` (the NB and Bernoulli units), :mod:`~.dispersion` (Fisher scoring of ``theta``, eq. 9),
:mod:`~.dbm` (the machine and its training), :mod:`~.sampling` (generation), :mod:`~.schedule` (phases and
learning rates, the reference's included) and :mod:`~.model` (:class:`ScDBM`, the registered model).
"""

from scsynth_core.models.scdbm.dbm import (
    ENUMERATE_MAX_HIDDEN,
    MAX_NB_STEP,
    MONITOR_MAX_HIDDEN,
    VAR_FLOOR,
    NegativeBinomialDBM,
)
from scsynth_core.models.scdbm.dispersion import fit_nb_dispersion, keep_means_shift
from scsynth_core.models.scdbm.model import ScDBM
from scsynth_core.models.scdbm.nb import A_MAX, MAX_RATE, bernoulli, nb_log_prob, nb_mean, sample_nb
from scsynth_core.models.scdbm.schedule import PHASES, REFERENCE_LR, REFERENCE_NB_RBM_LR

__all__ = [
    "A_MAX",
    "ENUMERATE_MAX_HIDDEN",
    "MAX_NB_STEP",
    "MAX_RATE",
    "MONITOR_MAX_HIDDEN",
    "PHASES",
    "REFERENCE_LR",
    "REFERENCE_NB_RBM_LR",
    "VAR_FLOOR",
    "NegativeBinomialDBM",
    "ScDBM",
    "bernoulli",
    "fit_nb_dispersion",
    "keep_means_shift",
    "nb_log_prob",
    "nb_mean",
    "sample_nb",
]
