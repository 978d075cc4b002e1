"""FR3 tasks as gymnasium environments, randomized per episode from a parameter distribution.

Registered ids (importing this module registers them):
  sim2real/FR3Reach-v0  end effector to a target point   (config/tasks/fr3_reach.yaml)
  sim2real/FR3Push-v0   puck to a goal on the table       (config/tasks/fr3_push.yaml)
`gym.make(id)` is one environment on `Simulator` (also on the reality proxy); `gym.make_vec(id, num_envs=N)`
is N of them batched on `BatchSimulator` (`sim.vector_tasks`), what training uses.

Both act with joint torques WITHOUT gravity (the simulator compensates gravity at nominal masses), the
franka_hardware effort semantics, so a trained policy serves unchanged on /effort_controller/commands.

Action (7,), float32:
    | index | quantity                         | unit | bounds                  |
    |-------|----------------------------------|------|-------------------------|
    | 0-6   | joint torque without gravity     | N*m  | +-(87,87,87,87,12,12,12)|

Observation, float64: "joint_state_v1" (q, dq) followed by the task's extra inputs:
    | index | quantity                      | unit  | task  |
    |-------|-------------------------------|-------|-------|
    | 0-6   | joint positions q1..q7        | rad   | both  |
    | 7-13  | joint velocities dq1..dq7     | rad/s | both  |
    | 14-16 | target position x, y, z       | m     | reach |
    | 14-16 | puck position x, y, z         | m     | push  |
    | 17-18 | goal position x, y            | m     | push  |

info: is_success (bool), distance [m] (end effector-target or puck-goal), parameters (the episode's
parameter vector, at reset; absent on the reality proxy). Episodes end (terminated) when a joint exceeds
its velocity limit, as a real FR3 stops on a reflex, or (push) when the puck leaves the table; they are
truncated after episode_steps.
"""
from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from ..config import OptionModel, load_config, named_file
from ..robot import load_robot
from .distributions import Distribution
from .models import load_model
from .reality import RealityProxy
from .simulator import Simulator

REACH_ID = "sim2real/FR3Reach-v0"
PUSH_ID = "sim2real/FR3Push-v0"


class Box(OptionModel):
    """An axis-aligned box [low, high] in the world frame [m]."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @model_validator(mode="after")
    def _ordered(self):
        if len(self.low) != len(self.high) or any(lo > hi for lo, hi in zip(self.low, self.high)):
            raise ValueError(f"a box needs low and high of equal size with low <= high, got {list(self.low)} and "
                             f"{list(self.high)}")
        return self

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) as arrays."""
        return np.array(self.low), np.array(self.high)


class TaskConfig(OptionModel):
    """A task file's `task` mapping (config/tasks/NAME.yaml); `name` is the file's stem."""

    name: str = ""
    parameter_space: str = Field(description="what a randomization distribution for this task ranges over")
    episode_steps: PositiveInt = Field(description="control periods per episode")
    keyframe: str = Field(description="start pose: a keyframe of the model")
    start_noise: NonNegativeFloat = Field(0.0, description="uniform joint offset at the start [rad]")
    success_radius: PositiveFloat = Field(description="success within this distance [m]")
    reward: dict[str, float] = Field(description="weight of each reward term")
    boxes: dict[str, Box] = Field(default_factory=dict, description="boxes drawn from at every reset")
    remove_bodies: tuple[str, ...] = Field((), description="model bodies the task simulates without")


def load_task(name_or_path: str | os.PathLike) -> TaskConfig:
    """Read config/tasks/NAME.yaml (or a path)."""
    path = named_file("tasks", name_or_path)
    return load_config(path, TaskConfig, "task").model_copy(update={"name": path.stem})


def task_reward(weights: dict[str, float], distance, scaled_torque: np.ndarray, dq: np.ndarray, success,
                shaping=0.0):
    """The FR3 tasks' reward per control period, for one environment or many (arrays (...) and (..., n)).

    -distance - mean squared torque / limit - squared joint speed + success bonus - shaping, each weighted by
    the task file's `reward` (the velocity-limit penalty is added where a reflex ends the episode).
    """
    return (-weights["distance"] * distance - weights["torque"] * np.mean(scaled_torque ** 2, axis=-1)
            - weights["velocity"] * np.sum(dq ** 2, axis=-1) + weights["success"] * success - shaping)


def puck_lost(puck: np.ndarray):
    """Whether the puck (position (..., 3) [m]) left the table: the push episode fails."""
    return (puck[..., 2] < -0.05) | np.any(np.abs(puck[..., :2]) > 1.0, axis=-1)


class FR3TaskEnv(gym.Env):
    """Common part of the FR3 tasks: simulator, per-episode randomization, torque actions, velocity reflex.

    Args:
      distribution: parameters drawn at every reset (its space becomes the simulator's); None: nominal.
      control_period: seconds per step [s]; default: the robot's (0.01).
      episode_steps: control periods per episode; default: the task file's.
      seed: seed of the first reset (later resets continue the stream unless given a seed).
      reality: a reality profile name (config/reality) to run on the reality proxy instead of the
        simulator, for evaluation (distribution must then be None).
      task: task file name or path; default: the class's.
    """

    metadata = {"render_modes": []}
    TASK = ""
    EXTRA = 0

    def __init__(self, distribution: Distribution | None = None, control_period: float | None = None,
                 episode_steps: int | None = None, seed: int | None = None, reality: str | None = None,
                 task: str | os.PathLike | None = None):
        self.config = load_task(task or self.TASK)
        if reality is not None:
            if distribution is not None:
                raise ValueError("the reality proxy has fixed hidden parameters: give distribution=None")
            self.sim = RealityProxy(reality, control_period=control_period)
        else:
            space = distribution.space if distribution is not None else self.config.parameter_space
            robot = load_robot()
            model = load_model(robot.model, remove_bodies=self.config.remove_bodies)
            self.sim = Simulator(space, robot=robot, model=model, control_period=control_period)
        self.distribution = distribution
        self.episode_steps = int(episode_steps or self.config.episode_steps)
        if self.episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {self.episode_steps}")
        robot = self.sim.robot
        self._limits = robot.torque_limits
        self._inv_limits = 1.0 / robot.torque_limits
        self._vel_limits = robot.velocity_limits
        self.action_space = gym.spaces.Box(-robot.torque_limits.astype(np.float32),
                                           robot.torque_limits.astype(np.float32), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2 * robot.dof + self.EXTRA,), dtype=np.float64)
        self._seed = seed
        self._steps = 0
        self._start = self.sim.model.key(self.config.keyframe).qpos.copy()
        self._obs = np.zeros(self.observation_space.shape)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode: draw parameters and the task's random layout.

        options: ``parameters`` (vector or {name: value}) overrides the draw; task-specific keys fix the
        layout (reach: ``target``; push: ``puck``, ``goal``).
        """
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        super().reset(seed=seed)
        options = options or {}
        rng = self.np_random
        if "parameters" in options:
            self.sim.set_parameters(options["parameters"])
        elif self.distribution is not None:
            self.sim.sample_parameters(self.distribution, rng)
        qpos = self._start.copy()
        dof = self.sim.robot.dof
        qpos[:dof] += rng.uniform(-self.config.start_noise, self.config.start_noise, dof)
        qpos[:dof] = np.clip(qpos[:dof], self.sim.robot.position_lower, self.sim.robot.position_upper)
        self._layout(qpos, options)
        joint_obs = self.sim.reset(seed=int(rng.integers(2**31)), keyframe=self.config.keyframe, qpos=qpos)
        self._steps = 0
        obs = self._observe(joint_obs)
        info = self._info()
        if not isinstance(self.sim, RealityProxy):  # the proxy's truth stays hidden
            info["parameters"] = self.sim.parameters.copy()
        return obs, info

    def step(self, action):
        torque = np.minimum(np.maximum(np.asarray(action, dtype=float), -self._limits), self._limits)
        joint_obs = self.sim.step(torque)
        self._steps += 1
        obs = self._observe(joint_obs)
        info = self._info()
        dq = self.sim.data.qvel[self.sim.dof_index]
        reward = float(task_reward(self.config.reward, info["distance"], torque * self._inv_limits, dq,
                                   info["is_success"], self._shaping()))
        terminated = bool(np.any(np.abs(dq) > self._vel_limits))
        if terminated:
            reward -= self.config.reward["velocity_limit"]
            info["velocity_limit"] = True
        terminated = terminated or self._failed()
        return obs, reward, terminated, self._steps >= self.episode_steps, info

    # task hooks
    def _layout(self, qpos: np.ndarray, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def _observe(self, joint_obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _info(self) -> dict[str, Any]:
        raise NotImplementedError

    def _shaping(self) -> float:
        return 0.0

    def _failed(self) -> bool:
        return False

    def _box(self, name: str, options: dict[str, Any]) -> np.ndarray:
        low, high = self.config.boxes[name].bounds
        if name in options:
            value = np.asarray(options[name], dtype=float)
            if value.shape != low.shape:
                raise ValueError(f"options[{name!r}] needs {low.size} values, got {value.tolist()}")
            return value
        return self.np_random.uniform(low, high)


class FR3ReachEnv(FR3TaskEnv):
    """Reach: end-effector site `ee` to a target point (observation 17 = joint_state_v1 + target xyz)."""

    TASK = "fr3_reach"
    EXTRA = 3
    EXTRA_INPUTS = ({"name": "target_position", "size": 3, "unit": "m", "default": [0.45, 0.0, 0.4]},)

    def _layout(self, qpos, options):
        self.target = self._box("target", options)

    def _observe(self, joint_obs):
        self._obs = np.concatenate([joint_obs, self.target])
        return self._obs.copy()

    def _info(self):
        offset = self.sim.site_position() - self.target
        distance = float(np.sqrt(offset @ offset))
        return {"distance": distance, "is_success": distance < self.config.success_radius}


class FR3PushEnv(FR3TaskEnv):
    """Push: the puck to a goal on the table (observation 19 = joint_state_v1 + puck xyz + goal xy)."""

    TASK = "fr3_push"
    EXTRA = 5
    EXTRA_INPUTS = ({"name": "puck_position", "size": 3, "unit": "m", "default": [0.5, 0.0, 0.02]},
                    {"name": "goal_position", "size": 2, "unit": "m", "default": [0.65, 0.0]})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._puck_adr = self.sim.model.jnt_qposadr[self.sim.model.joint("puck").id]

    def _layout(self, qpos, options):
        qpos[self._puck_adr:self._puck_adr + 2] = self._box("puck", options)
        self.goal = self._box("goal", options)

    def _puck(self) -> np.ndarray:
        return self.sim.data.qpos[self._puck_adr:self._puck_adr + 3]

    def _observe(self, joint_obs):
        self._obs = np.concatenate([joint_obs, self._puck(), self.goal])
        return self._obs.copy()

    def _info(self):
        distance = float(np.linalg.norm(self._puck()[:2] - self.goal))
        return {"distance": distance, "is_success": distance < self.config.success_radius}

    def _shaping(self):
        return self.config.reward["reach"] * float(np.linalg.norm(self.sim.site_position() - self._puck()))

    def _failed(self):
        return bool(puck_lost(self._puck()))


for _id, _cls in ((REACH_ID, FR3ReachEnv), (PUSH_ID, FR3PushEnv)):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=f"{__name__}:{_cls.__name__}",
                     vector_entry_point=f"{__package__}.vector_tasks:{_cls.__name__.replace('Env', 'VectorEnv')}")
