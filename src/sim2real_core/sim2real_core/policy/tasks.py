"""Task adapters: a gymnasium environment plus how its policy file describes observations and actions.

Training sees every environment through `HeadWrapper`, whose action space is Box(-1, 1): the wrapper turns
the network's action into the environment's torque with the same `ActionHead` the policy file stores, so
what was trained is exactly what `Policy.torque` (and so the policy server) computes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field

from ..config import ConfigError, OptionModel, config_path, load_config
from ..randomization.adr import AutomaticDomainRandomization
from ..sim.reality import DEFAULT_REALITY
from .policy_file import ACTION_MODES, MAX_HISTORY, ActionHead, EndEffectorFeatures, ObservationHistory, PolicySpec
from .safety import SafetyLayer, SafetyLimits, VectorSafetyLayer, load_safety_limits


class HeadWrapper(gym.Wrapper):
    """Box(-1, 1) actions -> the wrapped environment's torque through an `ActionHead` (and a safety layer).

    For joint_target_pd heads, q and dq are read from the newest observation (joint_state_v1: [q, dq, ...]).
    With `safety`, every torque passes a `SafetyLayer` (reset each episode) exactly as on the torque topic, so
    training and evaluation see the torque limits, rate limit and joint-limit guard the policy server applies.
    """

    def __init__(self, env: gym.Env, head: ActionHead, safety: SafetyLayer | None = None):
        super().__init__(env)
        self.head = head
        self.safety = safety
        self.action_space = gym.spaces.Box(-1.0, 1.0, (head.size,), dtype=np.float32)
        self._obs = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        if self.safety is not None:
            self.safety.reset()
        return obs, info

    def step(self, action):
        n = self.head.size
        q, dq = self._obs[:n], self._obs[n:2 * n]
        torque = self.head.torque(np.asarray(action, dtype=float), q, dq)
        if self.safety is not None:
            torque = self.safety.filter(torque, q, dq)
        obs, reward, terminated, truncated, info = self.env.step(torque.astype(self.env.action_space.dtype))
        self._obs = obs
        if self.safety is not None and self.safety.fault is not None:  # a latched fault stops the arm: episode over
            terminated, info = True, {**info, "safety_fault": self.safety.fault}
        return obs, reward, terminated, truncated, info


class FeatureWrapper(gym.ObservationWrapper):
    """Observations with a policy's `EndEffectorFeatures` appended: what the network sees in training."""

    def __init__(self, env: gym.Env, features: EndEffectorFeatures):
        super().__init__(env)
        self.features = features
        size = env.observation_space.shape[0] + features.size
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), dtype=np.float64)

    def observation(self, observation):
        return self.features(observation)


class VectorActionMap:
    """`HeadWrapper` for N arms inside a batched environment (`sim.vector_tasks.ActionMap`): Box(-1, 1) actions
    -> torque through the `ActionHead`, then a `VectorSafetyLayer` when `safety` is given."""

    def __init__(self, head: ActionHead, safety: SafetyLimits | None, period: float, num: int):
        self.head = head
        self.safety = None if safety is None else VectorSafetyLayer(safety, period, num)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (head.size,), dtype=np.float32)

    def reset(self, ids: np.ndarray) -> None:
        """These arms start an episode: their rate limits start from zero torque."""
        if self.safety is not None:
            self.safety.reset(ids)

    def __call__(self, actions: np.ndarray, q: np.ndarray, dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, m) actions -> (safe torques, arms faulted on a non-finite value)."""
        torque = self.head.torque(actions, q, dq)
        if self.safety is None:
            return torque, ~np.isfinite(torque).all(axis=1)
        return self.safety.filter(torque, q, dq)


class VectorFeatureWrapper(gym.vector.VectorWrapper):
    """`FeatureWrapper` for a vector environment (its observations and the ended episodes' final ones)."""

    def __init__(self, env: gym.vector.VectorEnv, features: EndEffectorFeatures):
        super().__init__(env)
        self.features = features
        size = env.single_observation_space.shape[0] + features.size
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), dtype=np.float64)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self.features(obs), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        if "final_obs" in info:
            info = {**info, "final_obs": self.features(np.stack(info["final_obs"]))}
        return self.features(obs), reward, terminated, truncated, info


class VectorHistory(gym.vector.VectorWrapper):
    """Observations followed by each environment's last `length` (state, action) pairs (policy_file's memory,
    `ObservationHistory`): what a memory policy sees in training. The state is the observation's first
    `state_size` values; an environment's pairs start from zeros at each episode start."""

    def __init__(self, env: gym.vector.VectorEnv, length: int, state_size: int):
        super().__init__(env)
        self.state_size = state_size
        self.memory = ObservationHistory(length, state_size, env.single_action_space.shape[0], env.num_envs)
        size = env.single_observation_space.shape[0] + self.memory.width
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), dtype=np.float64)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)
        self._obs = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.memory.reset()
        self._obs = obs
        return np.concatenate([obs, self.memory.values()], axis=1), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self.memory.push(self._obs[:, :self.state_size], actions)
        if "final_obs" in info:  # the ended episodes' last observations, with the memory they ended with
            ended = np.stack(info["final_obs"])
            info = {**info, "final_obs": np.concatenate([ended, self.memory.values()], axis=1)}
        self.memory.reset(terminated | truncated)
        self._obs = obs
        return np.concatenate([obs, self.memory.values()], axis=1), reward, terminated, truncated, info


@dataclass(frozen=True)
class TaskSetup:
    """Everything the trainer and the policy file need to know about one task."""

    name: str
    make_env: Callable[[], gym.Env]  # the raw environment (torque actions)
    layout: str
    head: ActionHead
    joint_names: list[str] = field(default_factory=list)
    extra_inputs: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # env id, distribution, ...
    safety: SafetyLimits | None = None  # the arm's limits, applied every control period
    control_period: float = 0.0
    features: EndEffectorFeatures | None = None  # appended to the observation before the network
    # N environments batched on one simulator, actions through an action map: make_vector(N, action_map, nthread)
    make_vector: Callable[[int, "VectorActionMap", int], gym.vector.VectorEnv] | None = None
    curriculum: Any = None  # distribution `adr` or `active`: what the batched training environments draw from
    history: int = 0  # (state, action) pairs of memory the policy sees (0: a memoryless policy)

    def vector(self, num_envs: int, batched: bool = True, nthread: int = 0) -> gym.vector.VectorEnv:
        """`num_envs` environments as training sees them (Box(-1, 1) actions, the task's features and memory):
        batched on one simulator where the task can be (stepped on `nthread` threads, 0: all CPUs), else (or with
        batched=False) a SyncVectorEnv of `wrapped()`."""
        if batched and self.make_vector is not None:
            action_map = VectorActionMap(self.head, self.safety, self.control_period, num_envs)
            envs = self.make_vector(num_envs, action_map, nthread)
            envs = envs if self.features is None else VectorFeatureWrapper(envs, self.features)
        else:
            envs = gym.vector.SyncVectorEnv([self.wrapped] * num_envs,
                                            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        if not self.history:
            return envs
        joint_state = self.layout == "joint_state_v1"
        return VectorHistory(envs, self.history,
                             2 * len(self.joint_names) if joint_state else envs.single_observation_space.shape[0])

    def wrapped(self) -> gym.Env:
        """A fresh environment behind the action head and safety layer (Box(-1, 1) actions), whose
        observations carry the task's features."""
        env = wrap(self.make_env(), self.head, self.safety, self.control_period)
        return env if self.features is None else FeatureWrapper(env, self.features)

    def spec(self, obs_mean, obs_std, obs_clip: float, hidden, training: dict[str, Any]) -> PolicySpec:
        """The policy-file description of a policy trained on this task (obs_mean/std: of the network input;
        obs_clip: the bound training clipped the normalised input to, so serving clips the same)."""
        extra = 0 if self.features is None else self.features.size
        actions = self.history * self.head.size  # the memory: `history` pairs of a state and an action
        if self.layout == "joint_state_v1":
            obs_size = len(obs_mean) - extra - actions - self.history * 2 * len(self.joint_names)
        else:  # the state is the observation
            obs_size = (len(obs_mean) - actions) // (1 + self.history)
        return PolicySpec(layout=self.layout, obs_size=obs_size, obs_mean=[float(v) for v in obs_mean],
                          obs_std=[float(v) for v in obs_std], obs_clip=float(obs_clip), hidden=list(hidden),
                          action=self.head,
                          joint_names=list(self.joint_names), extra_inputs=list(self.extra_inputs),
                          training={**self.provenance, **training},
                          features=self.feature_mapping(), history=self.history)

    def feature_mapping(self) -> dict[str, Any]:
        """The observation features as a policy sidecar stores them (empty: none)."""
        return {} if self.features is None else self.features.to_mapping()


def gym_task(env_id: str, **kwargs) -> TaskSetup:
    """A builtin gymnasium task with a symmetric Box action (e.g. Pendulum-v1): vector_v1, torque head."""
    probe = gym.make(env_id, **kwargs)
    space = probe.action_space
    probe.close()
    if not isinstance(space, gym.spaces.Box) or not np.allclose(space.low, -space.high):
        raise ValueError(f"{env_id}: needs a symmetric Box action space, got {space}")
    head = ActionHead(mode="torque", scale=[float(v) for v in space.high])
    return TaskSetup(name=env_id, make_env=lambda: gym.make(env_id, **kwargs), layout="vector_v1", head=head,
                     provenance={"env_id": env_id, "distribution": "none"})


def wrap(env: gym.Env, head: ActionHead, safety: SafetyLimits | None = None, period: float = 0.0) -> HeadWrapper:
    """`env` behind `head`, and behind a fresh safety layer with control period `period` when `safety` is given."""
    return HeadWrapper(env, head, None if safety is None else SafetyLayer(safety, period))


TRAIN_CONFIG = ("policy", "train.yaml")
DISTRIBUTION_KEYWORDS = ("none", "uniform", "oracle", "adr", "active")


class ActionHeadEntry(OptionModel):
    """A task's action head (policy_file.ActionHead); `center` defaults to the robot's home pose."""

    mode: Literal[ACTION_MODES]
    scale: list[float]
    center: list[float] | None = None
    kp: list[float] = []
    kd: list[float] = []


class FeaturesEntry(OptionModel):
    """The observation features a task's policies append (policy_file.EndEffectorFeatures)."""

    ee_offsets: list[str] = []


class TaskEntry(OptionModel):
    """A task of config/policy/train.yaml: its environment, and for the FR3 tasks the action head and features;
    `ppo` holds PPOConfig keyword arguments (checked by ppo_defaults)."""

    env_id: str
    action_head: ActionHeadEntry | None = None
    features: FeaturesEntry | None = None
    memory_history: int = Field(2, ge=1, le=MAX_HISTORY,
                                description="(state, action) pairs of memory of the task's memory policies (the "
                                            "transfer study's `memory` row)")
    ppo: dict[str, Any] = {}


class TrainFile(OptionModel):
    """config/policy/train.yaml."""

    tasks: dict[str, TaskEntry]


def task_defaults(name: str) -> TaskEntry:
    """The task's entry in config/policy/train.yaml."""
    path = config_path(*TRAIN_CONFIG)
    tasks = load_config(path, TrainFile).tasks
    if name not in tasks:
        raise ConfigError(f"unknown task {name!r}; {path} defines {sorted(tasks)}")
    return tasks[name]


def resolve_distribution(choice: str, space_name: str):
    """``none`` | ``uniform`` | ``oracle`` | a distribution YAML -> (Distribution or None, provenance).

    ``none``: nominal parameters; ``uniform``: the whole parameter box of the task's space; ``oracle`` (or
    ``oracle:PROFILE`` for another config/reality profile): the reality proxy's hidden in-family truth as a
    point mass (a privileged upper baseline, never a deployable choice); a file: a fitted distribution
    (e.g. DROPO/E-DROPO output).
    """
    from ..sim.distributions import Distribution, load_distribution
    from ..sim.parameters import load_parameter_space
    from ..sim.reality import load_reality

    if choice == "none":
        return None, {"distribution": "none"}
    space = load_parameter_space(space_name)
    if choice == "uniform":
        return Distribution.uniform(space), {"distribution": "uniform", "parameter_space": space_name}
    if choice == "oracle" or choice.startswith("oracle:"):
        profile = choice.partition(":")[2] or DEFAULT_REALITY
        reality = load_reality(profile)
        truth = reality.space.as_dict(reality.truth)
        values = space.vector({k: v for k, v in truth.items() if k in space.names}, fill_nominal=True)
        return Distribution.fixed(space, values, method="oracle"), {"distribution": "oracle", "reality": profile,
                                                                    "parameter_space": space_name}
    path = Path(choice)
    if path.suffix not in (".yaml", ".yml"):
        raise ValueError(f"--distribution must be one of {DISTRIBUTION_KEYWORDS}, oracle:PROFILE or a "
                         f"distribution .yaml file, got {choice!r}")
    dist = load_distribution(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return dist, {"distribution": str(path), "distribution_sha256": digest, "distribution_method": dist.method,
                  "parameter_space": space_name}


def make_task(name: str, distribution: str = "none", reality: str | None = None, history: int = 0) -> TaskSetup:
    """A task of config/policy/train.yaml under a randomization choice (see `resolve_distribution`).

    Args:
        name: ``pendulum`` (gymnasium, no randomization), ``reach`` or ``push`` (FR3, sim2real.sim.tasks).
        distribution: ``none`` | ``uniform`` | ``oracle`` | path of a distribution YAML | ``adr``: automatic
            domain randomization (randomization.adr) of the task's space, whose ranges the batched training
            environments grow from nominal by episode success (the single environment stays nominal) |
            ``active``: active domain randomization (randomization.active_training), whose particles the batched
            environments draw from and which move with the policy as it trains.
        reality: run the FR3 task on this reality-proxy profile instead (evaluation; distribution ``none``).
        history: (state, action) pairs of memory the policy sees (policy_file.ObservationHistory; 0: none), for
            a policy that adapts online to the dynamics it meets ("DR as meta-learning").
    """
    if not 0 <= history <= MAX_HISTORY:
        raise ValueError(f"history must be 0..{MAX_HISTORY} (state, action) pairs, got {history}")
    entry = task_defaults(name)
    env_id = entry.env_id
    if entry.action_head is None:
        if distribution != "none":
            raise ValueError(f"task {name!r} has no simulator parameters to randomize; use --distribution none")
        if reality is not None:
            raise ValueError(f"task {name!r} has no reality proxy; evaluate it on the simulator only")
        task = gym_task(env_id)
        return TaskSetup(**{**task.__dict__, "name": name, "provenance": {"task": name, **task.provenance},
                            "history": history})
    from ..sim import tasks  # noqa: F401  (registers the FR3 task ids)

    probe = gym.make(env_id)
    env = probe.unwrapped
    robot, space_name, extra = env.sim.robot, env.config.parameter_space, list(env.EXTRA_INPUTS)
    keyframe = env.config.keyframe
    probe.close()
    curriculum = None
    if distribution in ("adr", "active"):  # ranges that training grows from nominal; particles that follow the policy
        from ..randomization.active_training import ActiveCurriculum
        from ..randomization.rollouts import RolloutSetup
        from ..sim.parameters import load_parameter_space

        dist, provenance = None, {"distribution": distribution, "parameter_space": space_name}
        space = load_parameter_space(space_name)
        setup = RolloutSetup(space, keyframe, tuple(robot.joint_names), robot.control_period,
                             load_safety_limits(robot.name))
        curriculum = (AutomaticDomainRandomization(space) if distribution == "adr"
                      else ActiveCurriculum(setup, lambda: gym.make(env_id)))
    else:
        dist, provenance = resolve_distribution(distribution, space_name)
    if reality is not None:
        if dist is not None or curriculum is not None:
            raise ValueError("evaluation on the reality proxy takes no distribution")
        provenance = {"reality": reality}
    head = ActionHead(**{**entry.action_head.model_dump(),
                         "center": entry.action_head.center or [float(v) for v in robot.home]})
    features = None
    if entry.features is not None:
        if robot.kinematics is None:
            raise ConfigError(f"{config_path(*TRAIN_CONFIG)}: tasks.{name}.features need robot.kinematics in the "
                              f"robot file of {robot.name}")
        features = EndEffectorFeatures(robot.kinematics, extra, entry.features.ee_offsets)
    kwargs = {"distribution": dist} if reality is None else {"reality": reality}

    def make_vector(num_envs: int, action_map: VectorActionMap, nthread: int) -> gym.vector.VectorEnv:
        return gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", distribution=dist,
                            action_map=action_map, nthread=nthread, curriculum=curriculum)

    return TaskSetup(name=name, make_env=lambda: gym.make(env_id, **kwargs), layout="joint_state_v1", head=head,
                     joint_names=list(robot.joint_names), extra_inputs=[dict(e) for e in extra],
                     provenance={"task": name, "env_id": env_id,
                                 "control_period": robot.control_period, **provenance},
                     safety=load_safety_limits(robot.name), control_period=robot.control_period,
                     features=features, make_vector=make_vector if reality is None else None, curriculum=curriculum,
                     history=history)


def ppo_defaults(name: str) -> dict[str, Any]:
    """The task's PPO settings from config/policy/train.yaml (PPOConfig keyword arguments)."""
    from dataclasses import fields

    from .ppo import PPOConfig

    settings = dict(task_defaults(name).ppo)
    unknown = sorted(set(settings) - {f.name for f in fields(PPOConfig)})
    if unknown:
        raise ConfigError(f"{config_path(*TRAIN_CONFIG)}: tasks.{name}.ppo has unknown keys {unknown}; "
                          f"known: {[f.name for f in fields(PPOConfig)]}")
    if "hidden" in settings:
        settings["hidden"] = tuple(int(h) for h in settings["hidden"])
    return settings
