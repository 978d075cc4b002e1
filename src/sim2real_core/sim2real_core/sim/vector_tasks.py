"""The FR3 tasks as batched gymnasium vector environments: N episodes on one `BatchSimulator`.

`gym.make_vec("sim2real/FR3Reach-v0", num_envs=N, vectorization_mode="vector_entry_point")` (or FR3Push-v0)
steps all N environments' physics in one threaded mujoco.batch call per control period; parameters are drawn
from the training distribution per environment at every reset (model fields, action delay, action and sensor
noise); resets, rewards and terminations are numpy over the N environments. Observations, actions, rewards,
terminations and infos are those of the single environments in `sim.tasks` (same task files, same reward),
stacked; an environment that ends an episode starts the next in the same step (gymnasium's SAME_STEP
autoreset: the ended episode's observation and info are in ``info["final_obs"]`` and ``info["final_info"]``).

An optional `action_map` turns the policy's actions into torques inside the step, with the newest joint
state: the training action head and safety layer for N arms (`policy.tasks.VectorActionMap`).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from ..robot import load_robot
from .batch import BatchSimulator
from .distributions import Distribution
from .models import load_model
from .tasks import FR3PushEnv, FR3ReachEnv, load_task, puck_lost, task_reward


class ActionMap(Protocol):
    """Policy actions -> joint torques for N arms, with per-arm state reset at episode starts."""

    single_action_space: gym.spaces.Box

    def reset(self, ids: np.ndarray) -> None:
        """These arms start an episode."""

    def __call__(self, actions: np.ndarray, q: np.ndarray, dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, m) actions and the newest (N, n) joint positions and velocities -> (torques, arms faulted)."""


class FR3VectorEnv(gym.vector.VectorEnv):
    """N FR3 task episodes stepped together (see the module docstring).

    Args:
      num_envs: number of environments.
      distribution: parameters drawn per environment at every reset; None: nominal.
      curriculum: instead of a distribution, automatic or active domain randomization (randomization.adr,
        randomization.active_training): it draws each episode's parameters (`start(ids, rng)`) and is told whether
        the episode succeeded (`finish(ids, success)`).
      control_period: seconds per step [s]; default: the robot's.
      episode_steps: control periods per episode; default: the task file's.
      seed: seed of the first reset (later resets continue the stream unless given a seed).
      task: task file name or path; default: the class's.
      action_map: turns actions into torques (default: actions are torques, clipped to the limits).
      nthread: mujoco.batch worker threads (0: all CPUs; 1 where several trainings share the CPUs).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_modes": []}
    SINGLE = FR3ReachEnv

    def __init__(self, num_envs: int, distribution: Distribution | None = None, control_period: float | None = None,
                 episode_steps: int | None = None, seed: int | None = None, task: str | os.PathLike | None = None,
                 action_map: ActionMap | None = None, nthread: int = 0,
                 curriculum: Any = None):
        if distribution is not None and curriculum is not None:
            raise ValueError("give a distribution or a curriculum, not both")
        self.config = load_task(task or self.SINGLE.TASK)
        self.robot = robot = load_robot()
        source = distribution if distribution is not None else curriculum
        space = source.space if source is not None else self.config.parameter_space
        model = load_model(robot.model, remove_bodies=self.config.remove_bodies)
        self.sim = BatchSimulator(model, space, num_envs, control_period=control_period or robot.control_period,
                                  joints=robot.joint_names, nthread=nthread, kinematics=True)
        self.num_envs = int(num_envs)
        self.distribution = distribution
        self.curriculum = curriculum
        self.episode_steps = int(episode_steps or self.config.episode_steps)
        if self.episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {self.episode_steps}")
        self.action_map = action_map
        self._limits, self._inv_limits = robot.torque_limits, 1.0 / robot.torque_limits
        torque_space = gym.spaces.Box(-robot.torque_limits.astype(np.float32), robot.torque_limits.astype(np.float32),
                                      dtype=np.float32)
        self.single_action_space = action_map.single_action_space if action_map is not None else torque_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (2 * robot.dof + self.SINGLE.EXTRA,),
                                                       dtype=np.float64)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._keyframe = model.key(self.config.keyframe).id
        self._start = model.key(self.config.keyframe).qpos.copy()
        kinds = {p.kind: p for p in self.sim.space} if self.sim.space is not None else {}
        depth = int(kinds["action_delay"].high) if "action_delay" in kinds else 0
        self._past = np.zeros((self.num_envs, depth + int("command_latency" in kinds), robot.dof))
        self._steps = np.zeros(self.num_envs, dtype=int)
        self._obs = np.zeros((self.num_envs, self.single_observation_space.shape[0]))
        self._seed = seed
        self._options: dict[str, np.ndarray] = {}
        self._setup(model)

    # -- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start every environment's episode.

        options (as the single environment's, each for all environments or one row per environment):
        ``parameters`` (vectors, or {name: value} with the rest nominal) overrides the draw; task keys fix the
        layout (reach: ``target``; push: ``puck``, ``goal``).
        """
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        super().reset(seed=seed)
        if seed is not None:  # the simulator's noise follows the episode seed, as the single environment's does
            self.sim.rng = np.random.default_rng(int(self.np_random.integers(2**63)))
        options = dict(options or {})
        if isinstance(options.get("parameters"), Mapping):
            options["parameters"] = self.sim.space.vector(options["parameters"], fill_nominal=True)
        rows = {key: np.atleast_2d(np.asarray(value, dtype=float)) for key, value in options.items()}
        self._options = {key: np.broadcast_to(value, (self.num_envs, value.shape[1])) for key, value in rows.items()}
        try:
            self._start_episodes(np.arange(self.num_envs))
        finally:
            self._options = {}
        return self._obs.copy(), {**self._info(), "parameters": self.sim.parameters.copy()}

    def step(self, actions):
        actions = np.asarray(actions, dtype=float)
        n = self.robot.dof
        faulted = np.zeros(self.num_envs, dtype=bool)
        if self.action_map is not None:
            torque, faulted = self.action_map(actions, self._obs[:, :n], self._obs[:, n:2 * n])
        else:
            torque = actions
        torque = np.minimum(np.maximum(torque, -self._limits), self._limits)
        joint_obs = self.sim.step(torque, past_actions=self._past)
        if self._past.shape[1]:
            self._past[:, 1:] = self._past[:, :-1]
            self._past[:, 0] = torque
        self._steps += 1
        self._obs = self._observe(joint_obs)
        info = self._info()
        dq = self.sim.joint_velocities()
        scaled = torque * self._inv_limits
        reward = task_reward(self.config.reward, info["distance"], scaled, dq, info["is_success"], self._shaping())
        reflex = np.any(np.abs(dq) > self.robot.velocity_limits, axis=1)
        reward = reward - self.config.reward["velocity_limit"] * reflex
        info["velocity_limit"] = reflex
        if faulted.any():
            info["safety_fault"] = faulted
        terminated = reflex | self._failed() | faulted
        truncated = self._steps >= self.episode_steps
        done = terminated | truncated
        obs = self._obs.copy()
        if done.any():
            ended = np.flatnonzero(done)
            if self.curriculum is not None:
                self.curriculum.finish(ended, info["is_success"][ended])
            info = {**info, "final_obs": obs.copy(), "_final_obs": done,
                    "final_info": {k: v.copy() for k, v in info.items()}, "_final_info": done}
            self._start_episodes(ended)
            obs[ended] = self._obs[ended]
            for key, value in self._info().items():  # the new episodes' start, as gymnasium's autoreset gives
                info[key] = np.where(done, value, info[key])
        return obs, reward, terminated, truncated, info

    # -- episodes --------------------------------------------------------------------------------
    def _start_episodes(self, ids: np.ndarray) -> None:
        rng = self.np_random
        if "parameters" in self._options:
            self.sim.set_parameters(self._options["parameters"][ids], ids)
        elif self.distribution is not None:
            self.sim.set_parameters(self.distribution.sample(rng, ids.size), ids)
        elif self.curriculum is not None:
            self.sim.set_parameters(self.curriculum.start(ids, rng), ids)
        self.sim.reset(self._keyframe, ids)
        qpos = np.repeat(self._start[None, :], ids.size, axis=0)
        dof, noise = self.robot.dof, self.config.start_noise
        qpos[:, :dof] += rng.uniform(-noise, noise, (ids.size, dof))
        qpos[:, :dof] = np.clip(qpos[:, :dof], self.robot.position_lower, self.robot.position_upper)
        self._layout(ids, qpos)
        self.sim.set_state(qpos=qpos, ids=ids)
        self.sim.forward(ids)
        self._past[ids] = 0.0
        self._steps[ids] = 0
        if self.action_map is not None:
            self.action_map.reset(ids)
        self._obs[ids] = self._observe(self.sim.observation())[ids]

    # -- task hooks (arrays over the N environments) ---------------------------------------------
    def _setup(self, model) -> None:
        self.target = np.zeros((self.num_envs, 3))

    def _box(self, name: str, ids: np.ndarray) -> np.ndarray:
        low, high = self.config.boxes[name].bounds
        if name in self._options:
            values = self._options[name]
            if values.shape[1] != low.size:
                raise ValueError(f"options[{name!r}] needs {low.size} values per environment, got {values.shape[1]}")
            return values[ids]
        return self.np_random.uniform(low, high, (ids.size, low.size))

    def _layout(self, ids: np.ndarray, qpos: np.ndarray) -> None:
        self.target[ids] = self._box("target", ids)

    def _observe(self, joint_obs: np.ndarray) -> np.ndarray:
        return np.concatenate([joint_obs, self.target], axis=1)

    def _info(self) -> dict[str, np.ndarray]:
        distance = np.linalg.norm(self.sim.site_positions(self.robot.ee_site) - self.target, axis=1)
        return {"distance": distance, "is_success": distance < self.config.success_radius}

    def _shaping(self) -> np.ndarray | float:
        return 0.0

    def _failed(self) -> np.ndarray:
        return np.zeros(self.num_envs, dtype=bool)


class FR3ReachVectorEnv(FR3VectorEnv):
    """Reach (`sim.tasks.FR3ReachEnv`), batched."""


class FR3PushVectorEnv(FR3VectorEnv):
    """Push (`sim.tasks.FR3PushEnv`), batched."""

    SINGLE = FR3PushEnv

    def _setup(self, model) -> None:
        self._puck_adr = model.jnt_qposadr[model.joint("puck").id]
        self.goal = np.zeros((self.num_envs, 2))

    def _puck(self) -> np.ndarray:
        return self.sim.state()[0][:, self._puck_adr:self._puck_adr + 3]

    def _layout(self, ids, qpos):
        qpos[:, self._puck_adr:self._puck_adr + 2] = self._box("puck", ids)
        self.goal[ids] = self._box("goal", ids)

    def _observe(self, joint_obs):
        return np.concatenate([joint_obs, self._puck(), self.goal], axis=1)

    def _info(self):
        distance = np.linalg.norm(self._puck()[:, :2] - self.goal, axis=1)
        return {"distance": distance, "is_success": distance < self.config.success_radius}

    def _shaping(self):
        offset = self.sim.site_positions(self.robot.ee_site) - self._puck()
        return self.config.reward["reach"] * np.linalg.norm(offset, axis=1)

    def _failed(self):
        return puck_lost(self._puck())
