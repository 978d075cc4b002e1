"""A set of exploration policies learned in simulation with a discriminator diversity bonus.

The practical instantiation of Wagenmaker et al. 2024 (arXiv 2410.20254, "learning to explore"): K policies
are trained on the task reward plus a diversity bonus

    r_i(s, a) = r_task(s, a) + alpha * (log softmax_j d(s)_j |_{j=i} + log n),

where d is a small classifier over state features (end-effector position by default) that tells which
policy visited a state, and n the number of policies it distinguishes (the `log n` term, DIAYN's -log p(i)
for a uniform prior, makes the bonus zero at chance level, so it neither rewards nor punishes living longer).
A policy's bonus is switched on once its task return reaches `threshold`, so every policy stays
task-relevant before it is pushed away from the others.

PPO (`policy.ppo.train_ppo`) is used unchanged: `DiversityWrapper` adds the bonus inside the environment
and feeds the discriminator. `train_ppo` trains one policy per call from scratch, so the set is trained one
policy after another: policy i is told apart from the states of the finished policies 0..i-1 (rolled out
after their training) and its own training states. Policy 0 gets no bonus (there is nothing to differ from):
it is the plain task policy, which makes it the baseline of the coverage comparison.

On the target the exploration_dispatcher runs one policy per episode mixed with random torques;
`explore.coverage` measures what that collects in simulation, against the task policy and random torques.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ..policy.policy_file import Policy, load_policy, save_policy
from ..policy.ppo import PPOConfig, train_ppo
from ..policy.tasks import TaskSetup

FEATURES = ("ee", "joints")
POLICY_FOLDER = "explore_{index}"


@dataclass(frozen=True)
class DiversityConfig:
    """Settings of the exploration-set training.

    Attributes:
        k: number of exploration policies.
        steps: PPO environment steps per policy.
        alpha: weight of the diversity bonus.
        threshold: task return at which a policy's bonus switches on (stays on). Judged on the median of
            the last `window` episodes, an episode cut short (terminated) counting as failing. The default
            is about the FR3 reach return of holding the home pose under uniform randomization (-86 over
            10 episodes), i.e. "no worse than standing still, without tripping the velocity reflex".
        window: episodes in that median.
        features: what the discriminator sees: ``ee`` (end-effector position, m) or ``joints`` (q, rad).
        hidden: discriminator hidden layer sizes.
        learning_rate: discriminator Adam learning rate.
        update_every: own-policy states between discriminator updates.
        update_batches: minibatches per discriminator update.
        batch_size: states per class in a minibatch.
        buffer: states kept per class.
        reference_episodes: episodes of each finished policy whose states stand for it afterwards.
        seed: seed of the discriminator and the reference rollouts (policy i trains PPO with ppo.seed + i).
    """

    k: int = 3
    steps: int = 32_768
    alpha: float = 0.5
    threshold: float = -90.0
    window: int = 16
    features: str = "ee"
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    update_every: int = 1024
    update_batches: int = 16
    batch_size: int = 128
    buffer: int = 20_000
    reference_episodes: int = 4
    seed: int = 0

    def __post_init__(self):
        for name in ("k", "steps", "window", "update_every", "update_batches", "batch_size", "buffer",
                     "reference_episodes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.alpha >= 0 and np.isfinite(self.alpha)):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha}")
        if not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {self.features!r}")


def state_features(env: gym.Env, obs: np.ndarray, kind: str) -> np.ndarray:
    """The discriminator's view of the current state of an FR3 task environment."""
    if kind == "ee":
        return np.asarray(env.unwrapped.sim.site_position(), dtype=float).copy()
    n = len(env.unwrapped.sim.robot.joint_names)
    return np.asarray(obs[:n], dtype=float).copy()


class Discriminator:
    """d(s): an MLP classifier over `classes` policies, with a bounded state buffer per class.

    Args:
        classes: number of policies it can tell apart.
        size: feature size.
        hidden, learning_rate: network and Adam settings.
        buffer: states kept per class (the newest).
        seed: seed of the weights and the minibatch draws.
    """

    def __init__(self, classes: int, size: int, hidden: Sequence[int] = (64, 64), learning_rate: float = 1e-3,
                 buffer: int = 20_000, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        sizes = [size, *hidden, classes]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(a, b)
            with torch.no_grad():
                bound = 1.0 / np.sqrt(a)
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.uniform_(-bound, bound, generator=generator)
            layers += [linear] + ([nn.Tanh()] if i < len(sizes) - 2 else [])
        self.net = nn.Sequential(*layers)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=learning_rate)
        self.classes, self.size, self.capacity = classes, size, buffer
        self.buffers: list[np.ndarray] = [np.zeros((0, size)) for _ in range(classes)]
        self.rng = np.random.default_rng(seed)
        self.mean, self.std = np.zeros(size), np.ones(size)

    def add(self, index: int, features: np.ndarray) -> None:
        """Append states (rows) to class `index`, keeping the newest `buffer`."""
        rows = np.asarray(features, dtype=float).reshape(-1, self.size)
        self.buffers[index] = np.concatenate([self.buffers[index], rows])[-self.capacity:]

    def replace(self, index: int, features: np.ndarray) -> None:
        """Make `features` the states of class `index` (e.g. a finished policy's rollouts)."""
        self.buffers[index] = np.zeros((0, self.size))
        self.add(index, features)

    def train(self, classes: int, batches: int, batch_size: int) -> float:
        """Cross-entropy steps on minibatches with `batch_size` states of each of the first `classes` classes.

        Returns the mean loss, or NaN when a class has no states yet (nothing is trained then).
        """
        if classes < 2 or any(len(self.buffers[c]) == 0 for c in range(classes)):
            return float("nan")
        everything = np.concatenate(self.buffers[:classes])
        self.mean, self.std = everything.mean(axis=0), everything.std(axis=0) + 1e-6
        losses = []
        for _ in range(batches):
            x = np.concatenate([self.buffers[c][self.rng.integers(len(self.buffers[c]), size=batch_size)]
                                for c in range(classes)])
            y = torch.arange(classes).repeat_interleave(batch_size)
            logits = self.net(torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32))[:, :classes]
            loss = nn.functional.cross_entropy(logits, y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        return float(np.mean(losses))

    def log_probs(self, features: np.ndarray, classes: int) -> np.ndarray:
        """log softmax over the first `classes` classes for states of shape (n, size) -> (n, classes)."""
        x = (np.asarray(features, dtype=float).reshape(-1, self.size) - self.mean) / self.std
        with torch.no_grad():
            logits = self.net(torch.as_tensor(x, dtype=torch.float32))[:, :classes]
            return torch.log_softmax(logits, dim=-1).numpy().astype(float)


@dataclass
class DiversityBonus:
    """The bonus of policy `index` among `classes`, shared by all environments that train it.

    Call `reward` once per environment step and `episode_end` at every episode end.
    """

    discriminator: Discriminator
    index: int
    classes: int
    alpha: float
    threshold: float
    window: int = 16
    update_every: int = 1024
    update_batches: int = 16
    batch_size: int = 128
    steps: int = 0
    switched_on_at: int | None = None  # environment step at which the bonus switched on
    returns: list[float] = field(default_factory=list)  # task returns of finished episodes (-inf: cut short)
    losses: list[float] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Whether the bonus is switched on."""
        return self.switched_on_at is not None

    def reward(self, features: np.ndarray) -> float:
        """Record a visited state; the bonus for it (0 while switched off or with a single class)."""
        self.steps += 1
        self.discriminator.add(self.index, features)
        if self.classes > 1 and self.steps % self.update_every == 0:
            self.losses.append(self.discriminator.train(self.classes, self.update_batches, self.batch_size))
        if not self.active or self.classes < 2 or self.alpha == 0:
            return 0.0
        log_q = self.discriminator.log_probs(features, self.classes)[0, self.index]
        return float(self.alpha * (log_q + np.log(self.classes)))

    def episode_end(self, task_return: float, terminated: bool) -> None:
        """Record an episode's task return; switch the bonus on once the threshold is reached."""
        self.returns.append(float("-inf") if terminated else float(task_return))
        recent = self.returns[-self.window:]
        if not self.active and len(recent) >= self.window and np.median(recent) >= self.threshold:
            self.switched_on_at = self.steps


class DiversityWrapper(gym.Wrapper):
    """Adds `bonus.reward(features)` to every step's reward; info gets task_reward and diversity_bonus.

    Args:
        env: the task environment (any action space).
        bonus: the shared bonus of the policy being trained.
        features: ``ee`` or ``joints`` (see `state_features`).
    """

    def __init__(self, env: gym.Env, bonus: DiversityBonus, features: str = "ee"):
        super().__init__(env)
        self.bonus, self.features = bonus, features
        self._return = 0.0

    def reset(self, **kwargs):
        self._return = 0.0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        bonus = self.bonus.reward(state_features(self.env, obs, self.features))
        self._return += float(reward)
        info = {**info, "task_reward": float(reward), "diversity_bonus": bonus}
        if terminated or truncated:
            self.bonus.episode_end(self._return, bool(terminated))
        return obs, float(reward) + bonus, terminated, truncated, info


def rollout_features(policy: Policy, env_fn: Callable[[], gym.Env], episodes: int, features: str,
                     seed: int) -> np.ndarray:
    """States (features) visited by `policy` acting deterministically on its own observations."""
    env = env_fn()
    n, rows = len(policy.spec.joint_names), []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            done = False
            while not done:
                torque = policy.torque(obs[:n], obs[n:2 * n], obs[2 * n:])
                obs, _, terminated, truncated, _ = env.step(torque.astype(np.float32))
                rows.append(state_features(env, obs, features))
                done = terminated or truncated
    finally:
        env.close()
    return np.array(rows)


@dataclass(frozen=True)
class ExplorationSet:
    """What `train_exploration_policies` wrote."""

    out: Path
    policy_paths: list[Path]
    summary: dict


def train_exploration_policies(task: TaskSetup, out: str | os.PathLike, config: DiversityConfig = DiversityConfig(),
                               ppo: PPOConfig = PPOConfig(), progress: bool = True) -> ExplorationSet:
    """Train `config.k` exploration policies of an FR3 task one after another (see the module docstring).

    Writes out/explore_<i>/ (ordinary policy files; the sidecar's training.description says "exploration
    policy i of K") and out/exploration.json (settings, bonus switch-on steps, returns, discriminator losses,
    and the `distinguishability` of the finished policies' states).
    """
    # Networks this small run fastest on one thread; more threads oversubscribe a busy machine (README: why
    # some settings are what they are). Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_set(task, Path(out), config, ppo, progress)
    finally:
        torch.set_num_threads(threads)


def _train_set(task: TaskSetup, out: Path, config: DiversityConfig, ppo: PPOConfig, progress: bool) -> ExplorationSet:
    probe = task.wrapped()
    if not hasattr(probe.unwrapped, "sim"):
        probe.close()
        raise ValueError(f"exploration policies need an FR3 task (reach, push), got {task.name!r}")
    obs, _ = probe.reset(seed=config.seed)
    size = len(state_features(probe, obs, config.features))
    probe.close()
    discriminator = Discriminator(config.k, size, config.hidden, config.learning_rate, config.buffer, config.seed)
    paths, records = [], []
    for i in range(config.k):
        bonus = DiversityBonus(discriminator, i, i + 1, config.alpha, config.threshold, config.window,
                               config.update_every, config.update_batches, config.batch_size)
        result = train_ppo(lambda: DiversityWrapper(task.wrapped(), bonus, config.features), config.steps,
                           replace(ppo, seed=ppo.seed + i), progress=progress,
                           description=f"exploration policy {i} of {config.k}")
        record = {"index": i, "of": config.k, "alpha": config.alpha, "threshold": config.threshold,
                  "features": config.features, "bonus_switched_on_at": bonus.switched_on_at,
                  "final_task_return": _finite_median(bonus.returns[-config.window:]),
                  "episodes_cut_short": int(np.sum(np.isneginf(bonus.returns)))}
        training = {"description": f"exploration policy {i} of {config.k}", "algorithm": "ppo+diversity",
                    "steps": result.steps, "seed": ppo.seed + i,
                    "ppo": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(ppo).items()},
                    "exploration": record}
        spec = task.spec(result.obs_mean, result.obs_std, ppo.obs_clip, ppo.hidden, training)
        paths.append(save_policy(out / POLICY_FOLDER.format(index=i), spec, result.model.actor_weights()).parent)
        # From now on policy i is represented by what the finished policy does.
        discriminator.replace(i, rollout_features(load_policy(paths[-1]), task.make_env, config.reference_episodes,
                                                  config.features, seed=config.seed + 1000 * (i + 1)))
        records.append({**record, "discriminator_loss": [x for x in bonus.losses if np.isfinite(x)]})
    summary = {"task": task.name, "k": config.k, "config": {k: list(v) if isinstance(v, tuple) else v
                                                             for k, v in asdict(config).items()},
               "distinguishability": distinguishability(discriminator.buffers, config), "policies": records}
    (out / "exploration.json").write_text(json.dumps(summary, indent=2))
    return ExplorationSet(out, paths, summary)


def distinguishability(features: Sequence[np.ndarray], config: DiversityConfig, held_out: float = 0.3) -> float:
    """Held-out accuracy of a fresh discriminator telling the policies apart from their visited states.

    1/K (chance) means the policies visit the same states; 1 means every state gives its policy away.
    """
    rng = np.random.default_rng(config.seed)
    fresh = Discriminator(len(features), features[0].shape[1], config.hidden, config.learning_rate, config.buffer,
                          config.seed + 1)
    tests = []
    for index, rows in enumerate(features):
        order = rng.permutation(len(rows))
        cut = int(len(rows) * held_out)
        fresh.replace(index, rows[order[cut:]])
        tests.append(rows[order[:cut]])
    fresh.train(len(features), batches=10 * config.update_batches, batch_size=config.batch_size)
    correct = [np.mean(np.argmax(fresh.log_probs(rows, len(features)), axis=1) == index)
               for index, rows in enumerate(tests) if len(rows)]
    return float(np.mean(correct))


def _finite_median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values and np.isfinite(np.median(values)) else None
