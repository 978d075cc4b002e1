"""The Hopper benchmark system: gymnasium's Hopper-v5 model, its observation layout, and synthetic data.

Observation (11): qpos[1:6] (root z, root angle, thigh, leg, foot angles) then qvel[0:6], as Hopper-v5
without its velocity clipping; action (3): actuator controls in [-1, 1] held for 4 physics steps (8 ms).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import mujoco
import numpy as np

from ..sim.batch import BatchSimulator
from ..sim.parameters import ParameterSpace, load_parameter_space
from .engine import System
from .transitions import Transitions

FRAME_SKIP = 4
# True link masses [kg] (torso, thigh, leg, foot) of the benchmark's synthetic "real" systems; the model
# defaults are 3.67, 4.06, 2.78, 5.32.
BENCHMARK_MASSES = (
    (4.2, 3.3, 2.2, 4.6),
    (3.1, 4.9, 3.4, 6.1),
    (2.6, 3.6, 1.8, 4.0),
)


def hopper_model_path() -> Path:
    """gymnasium's Hopper MJCF (the Hopper-v5 model), found without importing gymnasium's renderer."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("gymnasium is not installed; the Hopper benchmark uses its hopper.xml")
    return Path(spec.submodule_search_locations[0]) / "envs" / "mujoco" / "assets" / "hopper.xml"


def hopper_system() -> System:
    """The Hopper-v5 model with its observation layout."""
    return System("hopper", mujoco.MjModel.from_xml_path(str(hopper_model_path())), FRAME_SKIP,
                  qpos_index=(1, 2, 3, 4, 5), qvel_index=(0, 1, 2, 3, 4, 5))


def hopper_space() -> ParameterSpace:
    """The 4 link masses of config/parameter_spaces/hopper.yaml."""
    return load_parameter_space("hopper")


def generate_hopper_data(masses, episodes: int = 20, steps: int = 500, seed: int = 0,
                         space: ParameterSpace | None = None, system: System | None = None,
                         reset_noise: float = 0.005, lift: float = 0.0, action_noise: float = 0.0) -> Transitions:
    """Random-policy transitions of a Hopper with the given true parameters (no early termination).

    Args:
      masses: true parameter vector of `space` (the 4 link masses by default) or {name: value}.
      episodes, steps: trajectories and control periods per trajectory.
      seed: seeds the start-state noise (uniform ±reset_noise around the model's rest pose) and the
        uniform random actions in [-1, 1].
      lift: start this many metres above the rest pose (e.g. to record flight without ground contact).
      action_noise: std of Gaussian noise added to the applied controls but not recorded (process noise, so
        that s' is a random function of (s, a)).
    Returns:
      Transitions with metadata naming the true parameters.
    """
    system = system or hopper_system()
    space = space or hopper_space()
    truth = space.vector(masses) if isinstance(masses, dict) else space.validate(np.asarray(masses, dtype=float))
    rng = np.random.default_rng(seed)
    sim = BatchSimulator(system.model, space, episodes, nstep=system.frame_skip)
    sim.set_parameters(truth)
    model = system.model
    qpos = model.qpos0 + rng.uniform(-reset_noise, reset_noise, (episodes, model.nq))
    qpos[:, 1] += lift
    sim.set_state(qpos, rng.uniform(-reset_noise, reset_noise, (episodes, model.nv)))
    obs = np.empty((episodes, steps + 1, system.state_dim))
    actions = rng.uniform(-1.0, 1.0, (episodes, steps, model.nu))
    obs[:, 0] = system.observe(*sim.state())
    for t in range(steps):
        sim.step(actions[:, t] + action_noise * rng.standard_normal(actions[:, t].shape), noise=False)
        obs[:, t + 1] = system.observe(*sim.state())
    ends = np.zeros((episodes, steps), dtype=bool)
    ends[:, -1] = True
    return Transitions(obs[:, :-1].reshape(-1, system.state_dim), actions.reshape(-1, model.nu),
                       obs[:, 1:].reshape(-1, system.state_dim), ends.reshape(-1),
                       {"robot": "hopper", "source": "generate_hopper_data", "seed": seed,
                        "true_parameters": space.as_dict(truth), "episodes": episodes, "steps": steps})
