"""The logic of the sim bridge node (no ROS here): profiles, command checks, watchdog, resets, episodes.

Profiles:
  sim      the Simulator over the task's parameter space; physics parameters and a randomization
           distribution may be set at run time (validated against the space's bounds).
  reality  the RealityProxy (config/reality): hidden true parameters and unmodelled effects; every physics
           parameter or distribution change is refused, and no event reveals the truth.

Commands are torques without gravity, one value per joint. A command of the wrong length or with non-finite
values is dropped and counted; a step whose newest command is older than the watchdog period applies zero
torque (counted). Steps ending above a joint velocity limit are counted (a real FR3 stops on a reflex
there; the simulation goes on). The bridge clock starts at the wall time of construction and advances with
simulated time only, so it never jumps back, not even at a reset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..config import ConfigError
from .camera import APPEARANCE_SPACE
from .distributions import Distribution, load_distribution
from .parameters import load_parameter_space
from .reality import DEFAULT_REALITY, RealityProxy
from .simulator import Simulator
from .tasks import load_task

PROFILES = ("sim", "reality")
CLOCKING = ("realtime", "lockstep")
TASKS = {"reach": "fr3_reach", "push": "fr3_push"}


@dataclass(frozen=True)
class BridgeConfig:
    """Start-up settings of the bridge (the node's read-only parameters).

    Attributes:
      profile: sim | reality.
      task: reach | push (parameter space, start keyframe, puck pose output).
      clocking: realtime (paced by the wall clock) | lockstep (one period per command or step request).
      rate: steps per second; 0: 1 / the robot's control period. Delays are counted in these periods.
      watchdog_period: a command older than this [s] is replaced by zero torque.
      seed: seed of the reset sequence (each reset draws its simulator seed from it).
      reality: reality file (config/reality name or path), profile reality only.
      visual_randomization: profile sim: the camera's appearance is drawn from the appearance space's box at every
        reset (else the model's own look); the reality profile always shows its hidden look.
    """

    profile: str = "sim"
    task: str = "reach"
    clocking: str = "realtime"
    rate: float = 0.0
    watchdog_period: float = 0.05
    seed: int = 0
    reality: str = DEFAULT_REALITY
    visual_randomization: bool = False

    def __post_init__(self):
        for name, value, allowed in (("profile", self.profile, PROFILES), ("clocking", self.clocking, CLOCKING),
                                     ("task", self.task, tuple(TASKS))):
            if value not in allowed:
                raise ValueError(f"parameter {name} must be one of {list(allowed)}, got {value!r}")
        if not (self.rate >= 0 and math.isfinite(self.rate)):
            raise ValueError(f"parameter rate must be >= 0 Hz (0: the robot's control rate), got {self.rate}")
        if not self.watchdog_period > 0:
            raise ValueError(f"parameter watchdog_period must be > 0 s, got {self.watchdog_period}")


class SimBridge:
    """The simulated (or reality-proxy) arm behind the franka_ros2 topics.

    Args:
      config: start-up settings.
      start_time: clock value [s] at construction (the node passes the wall time).
    """

    def __init__(self, config: BridgeConfig, start_time: float = 0.0):
        self.config = config
        self.task = load_task(TASKS[config.task])
        period = None if config.rate == 0 else 1.0 / config.rate
        try:
            if config.profile == "reality":
                self.sim: Simulator = RealityProxy(config.reality, control_period=period)
            else:
                self.sim = Simulator(self.task.parameter_space, control_period=period)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        self.period = self.sim.control_period
        self.joint_names = self.sim.robot.joint_names
        self.space = self.sim.space if config.profile == "sim" else None
        self.distribution: Distribution | None = None
        self.distribution_path = ""
        self._seeds = np.random.default_rng(config.seed)
        self._clock0_ns = int(round(start_time * 1e9))
        self.period_ns = int(round(self.period * 1e9))
        self.episode = -1
        self.episode_steps = 0
        self.steps = 0
        self.counters = {"commands": 0, "dropped_wrong_length": 0, "dropped_nonfinite": 0, "dropped_paused": 0,
                         "watchdog_zero_steps": 0, "velocity_limit_steps": 0, "resets": 0}
        self._command = np.zeros(len(self.joint_names))
        self._command_time = -math.inf
        self.has_puck = config.task == "push"
        profile = getattr(self.sim, "profile", None)
        if profile is not None and profile.appearance is not None:  # the reality's hidden look
            self.appearance_space, self.appearance = profile.appearance_space, profile.appearance.copy()
        else:
            self.appearance_space = load_parameter_space(APPEARANCE_SPACE)
            self.appearance = self.appearance_space.nominal.copy()

    # -- commands ----------------------------------------------------------------------------------
    def command(self, values, now: float) -> str:
        """Accept a torque command received at wall time `now`; returns '' or why it was dropped."""
        values = np.asarray(values, dtype=float).ravel()
        if values.size != len(self.joint_names):
            self.counters["dropped_wrong_length"] += 1
            return f"command has {values.size} values, expected {len(self.joint_names)}"
        if not np.all(np.isfinite(values)):
            self.counters["dropped_nonfinite"] += 1
            return f"command has non-finite values {values.tolist()}"
        self.counters["commands"] += 1
        self._command, self._command_time = values, now
        return ""

    def drop_paused(self) -> None:
        """Count a command that arrived while paused (lockstep)."""
        self.counters["dropped_paused"] += 1

    def step(self, now: float) -> np.ndarray:
        """Advance one period with the newest command, or zero torque if it is older than the watchdog."""
        if now - self._command_time <= self.config.watchdog_period:
            torque = self._command
        else:
            torque = np.zeros(len(self.joint_names))
            self.counters["watchdog_zero_steps"] += 1
        self.sim.step(torque)
        if np.any(np.abs(self.sim.data.qvel[self.sim.dof_index]) > self.sim.robot.velocity_limits):
            self.counters["velocity_limit_steps"] += 1  # a real FR3 would stop with a velocity reflex
        self.steps += 1
        self.episode_steps += 1
        return torque

    def forget_command(self) -> None:
        """Make the newest command stale (after a reset a new episode starts from zero torque)."""
        self._command_time = -math.inf

    # -- episodes ----------------------------------------------------------------------------------
    def reset(self) -> list[dict[str, Any]]:
        """Start a new episode: draw parameters (sim profile with a distribution) and reset to the start pose.

        Returns the episode events to publish: the previous episode's "end" (if one ran) and the new "start".
        """
        events = []
        if self.episode >= 0:
            events.append({"event": "end", "episode": self.episode, "source": "sim_bridge",
                           "steps": self.episode_steps, "stamp": self.clock})
        seed = int(self._seeds.integers(2**31))
        if self.distribution is not None:
            self.sim.sample_parameters(self.distribution, np.random.default_rng(seed))
        if self.space is not None and self.config.visual_randomization:
            self.appearance = Distribution.uniform(self.appearance_space).sample(np.random.default_rng([seed, 1]), 1)[0]
        self.sim.reset(seed=seed, keyframe=self.task.keyframe)
        self.forget_command()
        self.episode += 1
        self.episode_steps = 0
        self.counters["resets"] += 1
        start = {"event": "start", "episode": self.episode, "source": "sim_bridge", "profile": self.config.profile,
                 "task": self.config.task, "seed": seed, "stamp": self.clock}
        if self.space is not None:  # the reality profile never reveals its parameters
            start["parameters"] = self.space.as_dict(self.sim.parameters)
            start["distribution"] = self.distribution_path
        events.append(start)
        return events

    # -- parameters (sim profile) --------------------------------------------------------------------
    def physics_values(self) -> dict[str, float]:
        """Current physics parameter values by name (sim profile)."""
        self._require_sim("physics parameters")
        return self.space.as_dict(self.sim.parameters)

    def set_physics(self, values: Mapping[str, float]) -> None:
        """Set named physics parameters now (the others keep their values); ValueError with the reason."""
        self._require_sim("physics parameters")
        current = self.space.as_dict(self.sim.parameters)
        unknown = sorted(set(values) - set(current))
        if unknown:
            raise ValueError(f"unknown physics parameters {unknown}; known: {list(self.space.names)}")
        for name, value in values.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"physics parameter {name} needs a number, got {value!r}")
            p = self.space[name]
            if p.integer and float(value) != round(float(value)):
                raise ValueError(f"physics parameter {name} [{p.unit}] takes whole numbers, got {value}")
        current.update(values)
        self.sim.set_parameters(self.space.vector(current))

    def set_distribution(self, path: str) -> None:
        """Randomize from this distribution file at every reset ('' stops randomizing); ValueError if unusable."""
        self._require_sim("a randomization distribution")
        if not path:
            self.distribution, self.distribution_path = None, ""
            return
        try:
            dist = load_distribution(path)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        try:
            dist = dist.embed(self.space)  # a fit over some parameters keeps the others nominal
        except KeyError as exc:
            raise ValueError(f"distribution {path} is over {list(dist.space.names)}, which the bridge's space "
                             f"{self.space.name} does not contain: {exc}") from None
        self.space.validate(dist.low)
        self.space.validate(dist.high)
        self.distribution, self.distribution_path = dist, str(path)

    def _require_sim(self, what: str) -> None:
        if self.space is None:
            raise ValueError(f"the reality profile has hidden physics: {what} cannot be read or set")

    # -- readings ----------------------------------------------------------------------------------
    @property
    def clock(self) -> float:
        """Bridge clock [s]: start time plus simulated time over all episodes."""
        return self.clock_ns * 1e-9

    @property
    def clock_ns(self) -> int:
        """The bridge clock in integer nanoseconds (exact period spacing for message stamps)."""
        return self._clock0_ns + self.steps * self.period_ns

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Measured (position, velocity, effort) in joint order."""
        obs = self.sim.observation
        n = len(self.joint_names)
        return obs[:n], obs[n:], self.sim.efforts()

    def camera_view(self) -> tuple[int, np.ndarray, np.ndarray]:
        """What the camera renders now: (clock [ns], the full qpos, the appearance vector), copies."""
        return self.clock_ns, self.sim.state().qpos, self.appearance.copy()

    def puck_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Puck (position, quaternion w-x-y-z) in the world frame."""
        return self.sim.body_pose("puck")
