"""The experiments, one module each, with the steps their rules call (the generic stage steps are in
:mod:`scsynth_core.steps`):

- :mod:`~scsynth_core.experiments.realism`: generated against real test cells (Marouf 2020; ACTIVA; Heydari 2022).
- :mod:`~scsynth_core.experiments.classification`: ACTINN's accuracy and F1 on the realism splits (Heydari 2022
  Supp. Tables S6-S7).
- :mod:`~scsynth_core.experiments.augmentation`: a downsampled cluster augmented with generated cells (Marouf 2020
  Fig. 3; Heydari 2022 Fig. 6).
- :mod:`~scsynth_core.experiments.pilot`: models trained on small pilot sets (Treppner 2021).
- :mod:`~scsynth_core.experiments.disentanglement`: disentangled codes on simulated factors (Yu & Welch 2021).
- :mod:`~scsynth_core.experiments.perturbation`: predicting a held-out cell type x condition (Yu & Welch 2021
  Figs. 6-7).
"""
