"""The FR3 as a fitting system (joint_state_v1, or with the puck joint_state_puck_v1), and synthetic
random-torque data from sim.batch."""
from __future__ import annotations

import numpy as np

from ..data.layouts import JOINT_STATE, JOINT_STATE_PUCK
from ..robot import DEFAULT_ROBOT, load_robot
from ..sim.batch import BatchSimulator, joint_actuators, joint_indices
from ..sim.models import load_model
from ..sim.parameters import ParameterSpace, history_depth
from .engine import System
from .transitions import Transitions

PUCK_JOINT = "puck"  # the free joint of the pushing task's puck in the FR3 model


def fr3_system(robot: str = DEFAULT_ROBOT, puck: bool = False) -> System:
    """The arm model with the joint_state_v1 layout, or with `puck` the joint_state_puck_v1 layout.

    Without `puck` other bodies (the puck) start at the model's qpos0 in every prediction; with it the puck's
    free joint is reset from the state as well (data.layouts). Actions are joint torques without gravity on the
    arm's motors (the model's gravcomp compensates at nominal masses), held for one control period of
    config/robots/ROBOT.yaml.
    """
    spec = load_robot(robot)
    model = load_model(spec.model)
    model.opt.timestep = spec.physics_timestep
    frame_skip = round(spec.control_period / spec.physics_timestep)
    qadr, dadr = joint_indices(model, spec.joint_names)
    acts = joint_actuators(model, spec.joint_names)
    objects: dict = {}
    if puck:
        joint = model.joint(PUCK_JOINT)
        qstart, vstart = int(joint.qposadr[0]), int(joint.dofadr[0])
        objects = {"object_qpos_index": tuple(range(qstart, qstart + 7)),
                   "object_qvel_index": tuple(range(vstart, vstart + 6))}
    return System(f"{spec.name}_push" if puck else spec.name, model, frame_skip, tuple(int(i) for i in qadr),
                  tuple(int(i) for i in dadr), actuators=tuple(int(i) for i in acts),
                  layout=JOINT_STATE_PUCK if puck else JOINT_STATE, **objects)


def smoothed_random_torque(previous: np.ndarray, rng: np.random.Generator, scale: np.ndarray) -> np.ndarray:
    """The next torque of a low-passed uniform draw within ±scale (per joint), from the previous one."""
    return 0.8 * previous + 0.2 * rng.uniform(-1, 1, previous.shape) * scale


def generate_fr3_data(space: ParameterSpace, truth: np.ndarray, episodes: int = 20, steps: int = 100,
                      seed: int = 0, torque_fraction: float = 0.3, robot: str = DEFAULT_ROBOT) -> Transitions:
    """Transitions of the simulated arm with true parameters under smoothed random torques from near home.

    Args:
      space, truth: the true parameter vector (no noise effects).
      episodes, steps: trajectories and control periods each.
      torque_fraction: torques are a low-passed uniform draw within this fraction of the joint limits.
    """
    spec = load_robot(robot)
    rng = np.random.default_rng(seed)
    sim = BatchSimulator(spec.model, space, episodes, control_period=spec.control_period, joints=spec.joint_names,
                         seed=seed)
    sim.set_parameters(np.asarray(truth, dtype=float))
    sim.reset(keyframe=spec.home_keyframe)
    start = np.concatenate([spec.home + rng.normal(0.0, 0.2, (episodes, spec.dof)), np.zeros((episodes, spec.dof))], 1)
    sim.set_observation_state(start)
    obs = np.empty((episodes, steps + 1, sim.obs_dim))
    actions = np.empty((episodes, steps, spec.dof))
    obs[:, 0] = sim.observation(noise=False)
    torque = np.zeros((episodes, spec.dof))
    past = np.zeros((episodes, history_depth(space), spec.dof))  # the commands before, most recent first
    for t in range(steps):
        torque = smoothed_random_torque(torque, rng, spec.torque_limits * torque_fraction)
        actions[:, t] = torque
        obs[:, t + 1] = sim.step(torque, past_actions=past, noise=False)
        past = np.concatenate([torque[:, None], past[:, :-1]], axis=1)
    ends = np.zeros((episodes, steps), dtype=bool)
    ends[:, -1] = True
    return Transitions(obs[:, :-1].reshape(-1, sim.obs_dim), actions.reshape(-1, spec.dof),
                       obs[:, 1:].reshape(-1, sim.obs_dim), ends.reshape(-1),
                       {"robot": robot, "state_layout": JOINT_STATE, "source": "generate_fr3_data",
                        "seed": seed, "true_parameters": space.as_dict(truth)})
