"""Every setting of a fit, each default defined once: `sim2real fit` options and the odr_fitter node's
parameters are generated from `FitOptions`, and it makes the method's configuration."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..config import OptionModel
from .dropo import AUTO_TRANSITIONS, OPTIMIZERS, DropoConfig
from .sysid import SysIdConfig


class FitOptions(OptionModel):
    """Settings of a DROPO, E-DROPO, SysID or uniform fit."""

    samples: int = Field(DropoConfig.samples, ge=2, le=100_000,
                         description="K parameter samples per transition (DROPO, E-DROPO)")
    transitions: int = Field(AUTO_TRANSITIONS, ge=AUTO_TRANSITIONS,
                             description="transitions per sampled-objective evaluation of DROPO and E-DROPO (0: all; "
                                         "-1: chosen from the data, all of them when the evaluations' estimated time "
                                         "stays within fit_seconds, else as many as fit; SysID: sysid_transitions)")
    fit_seconds: float = Field(600.0, gt=0.0, description="time the sampled-objective evaluations may take when "
                                                          "transitions is -1 [s]")
    epsilon: float = Field(DropoConfig.epsilon, gt=0.0,
                           description="variance added to the predicted next-state covariance, in state units "
                                       "scaled by the spread of s'-s (the start of the learned epsilon, or its value)")
    learn_epsilon: bool = Field(DropoConfig.learn_epsilon,
                                description="fit epsilon with the distribution (a fixed epsilon pushes every std to "
                                            "its cap on data the simulator cannot reproduce)")
    epsilon_per_dimension: bool = Field(DropoConfig.epsilon_per_dimension,
                                        description="with learn_epsilon, one epsilon per state dimension")
    horizon: int = Field(DropoConfig.horizon, ge=1, le=1000, description="lambda: control periods per prediction")
    alpha: float = Field(0.0, ge=0.0, description="E-DROPO's entropy weight; 0: chosen from the data, one over the "
                                                  "transitions fitted (fit.methods.edropo_alpha)")
    covariance: Literal["diag", "full"] = Field(DropoConfig.covariance, description="Gaussian family")
    optimizer: Literal[OPTIMIZERS] = Field(DropoConfig.optimizer, description="DROPO optimiser")
    budget: int = Field(DropoConfig.max_evaluations, ge=0, description="sampled-objective evaluations (the "
                        "linearized search's polish, or the whole search)")
    linearizations: int = Field(DropoConfig.linearizations, ge=1, description="re-linearisations (linearized)")
    linearized_transitions: int = Field(DropoConfig.linearized_transitions, ge=0,
                                        description="transitions in the linearised objective (0: all)")
    warm_start: bool = Field(DropoConfig.warm_start, description="start the mean from a quick SysID estimate")
    init_std: float = Field(DropoConfig.init_std, gt=0.0, le=1.0, description="initial std in bound units")
    truncation_sigma: float = Field(DropoConfig.truncation_sigma, gt=0.0,
                                    description="parameter samples are truncated at this many std")
    sysid_transitions: int = Field(SysIdConfig.transitions, ge=0, description="transitions SysID uses (0: all)")
    sysid_iterations: int = Field(SysIdConfig.max_iterations, ge=1,
                                  description="SysID's least-squares iterations")
    holdout: float = Field(0.2, ge=0.0, lt=1.0, description="fraction of the episodes held out of the fit and "
                                                             "used to validate it (0: none)")
    seed: int = Field(0, ge=0, description="seed of subsamples, common random numbers and the held-out episodes")
    threads: int = Field(0, ge=0, le=1024, description="simulation threads (0: all CPUs)")
    shards: int = Field(0, ge=0, le=4096, description="the transitions of DROPO's, E-DROPO's and SysID's objective "
                                                      "split over this many Ray actors, one CPU each (0: in this "
                                                      "process)")
    ray_address: str = Field("", description="the Ray cluster the shards run on (empty: RAY_ADDRESS if set, else a "
                                             "local Ray instance)")

    def method_config(self, method: str) -> DropoConfig | SysIdConfig:
        """The configuration of `method` (dropo, edropo, sysid, uniform) with these settings."""
        if method == "sysid":
            return SysIdConfig(horizon=self.horizon, transitions=self.sysid_transitions,
                               max_iterations=self.sysid_iterations, seed=self.seed, shards=self.shards)
        return DropoConfig(samples=self.samples, epsilon=self.epsilon, learn_epsilon=self.learn_epsilon,
                           epsilon_per_dimension=self.epsilon_per_dimension,
                           horizon=self.horizon, transitions=max(self.transitions, 0), covariance=self.covariance,
                           entropy_weight=self.alpha if method == "edropo" else 0.0, optimizer=self.optimizer,
                           max_evaluations=self.budget, linearizations=self.linearizations,
                           linearized_transitions=self.linearized_transitions, warm_start=self.warm_start,
                           init_std=self.init_std, truncation_sigma=self.truncation_sigma, seed=self.seed,
                           shards=self.shards)
