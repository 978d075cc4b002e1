"""Offline domain randomization: fit simulator parameter distributions to real transitions.

DROPO / E-DROPO (`fit_dropo`, `fit_edropo`), least-squares SysID (`fit_sysid`) and the uniform DR baseline
(`fit_uniform`), on a batched mujoco.batch likelihood engine (`BatchPredictor`).

Modules: transitions (validated arrays, λ-step windows), engine (System, BatchPredictor, Gaussian likelihood),
dropo (objective, optimisers), sysid (least squares, intervals), methods (the four fits, identifiability),
systems / hopper / fr3 / push (models and observation layouts, synthetic data), files (fit from a dataset file),
report (plots, markdown), shards (objectives on cluster workers), commands (`sim2real fit`). The studies built
on them live in the application package (sim2real.studies).
"""
from .dropo import DropoConfig, DropoObjective, FitResult
from .engine import BatchPredictor, System, gaussian_loglik, reference_predict
from .methods import METHODS, fit, fit_dropo, fit_edropo, fit_sysid, fit_uniform, identifiability
from .sysid import SysIdConfig
from .transitions import TransitionError, Transitions, from_dataset

__all__ = [
    "BatchPredictor", "DropoConfig", "DropoObjective", "FitResult", "METHODS", "SysIdConfig", "System",
    "TransitionError", "Transitions", "fit", "fit_dropo", "fit_edropo", "fit_sysid", "fit_uniform",
    "from_dataset", "gaussian_loglik", "identifiability", "reference_predict",
]
