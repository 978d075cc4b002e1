"""PPO (clipped surrogate, GAE) on CPU over gymnasium vector environments: torch holds the parameters, numpy computes.

Written by hand only as far as a continuous-action, on-policy trainer needs: a Gaussian MLP actor with a
state-independent log-std, an MLP critic, running observation normalisation and return-based reward scaling.
The actor's tensors are named like `policy_file.Policy` expects (layers.i.weight/bias), so the trained
policy is exported to a safetensors policy file and served by numpy without torch.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import safetensors
import safetensors.torch
import torch
from threadpoolctl import threadpool_limits
from torch import nn
from tqdm import tqdm

from .policy_file import DEFAULT_OBS_CLIP


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (defaults suit small continuous-control tasks)."""

    num_envs: int = 8
    rollout_steps: int = 128  # per environment and update
    epochs: int = 10
    minibatch_size: int = 256
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    learning_rate: float = 3e-4
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: tuple[int, ...] = (64, 64)
    init_log_std: float = -0.5
    obs_clip: float = DEFAULT_OBS_CLIP
    seed: int = 0
    # "adaptive": after every minibatch the learning rate is divided by 1.5 when the KL divergence between the
    # rollout's and the updated policy exceeds 2 * desired_kl, multiplied by 1.5 below desired_kl / 2, within
    # [1e-5, 1e-2] (the rule of rsl_rl's PPO, rsl_rl/algorithms/ppo.py); large batches then learn at full speed.
    learning_rate_schedule: str = "fixed"
    desired_kl: float = 0.01

    def __post_init__(self):
        for name in ("num_envs", "rollout_steps", "epochs", "minibatch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PPO {name} must be >= 1, got {getattr(self, name)}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1 and self.clip > 0 and self.learning_rate > 0):
            raise ValueError(f"PPO needs 0<gamma<=1, 0<=gae_lambda<=1, clip>0, learning_rate>0: {self}")
        if self.learning_rate_schedule not in ("fixed", "adaptive") or not self.desired_kl > 0:
            raise ValueError(f"PPO learning_rate_schedule must be 'fixed' or 'adaptive' and desired_kl > 0: {self}")


class RunningMeanStd:
    """Streaming mean and variance (parallel-update formula of Chan et al.)."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of shape (n, *shape) into the statistics."""
        n = batch.shape[0]
        mean = np.add.reduce(batch, axis=0) / n  # np.mean and np.var's arithmetic, without their wrappers' overhead
        centred = batch - mean
        var = np.add.reduce(centred * centred, axis=0) / n
        delta, total = mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Standard deviation (never zero)."""
        return np.sqrt(self.var + 1e-8)


def mlp(sizes: list[int]) -> nn.ModuleList:
    """Linear layers of an MLP (tanh between them, as `Policy.act` evaluates it)."""
    layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
    for i, layer in enumerate(layers):
        nn.init.orthogonal_(layer.weight, gain=np.sqrt(2) if i < len(layers) - 1 else 0.01)
        nn.init.zeros_(layer.bias)
    return layers


LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


class ActorCritic(nn.Module):
    """Gaussian actor (mean MLP, state-independent log-std) and a separate value MLP: the parameters' home, their
    initialisation and the checkpoint format. PPO computes with them in numpy (`NumpyActorCritic`)."""

    def __init__(self, obs_size: int, act_size: int, hidden: tuple[int, ...], init_log_std: float):
        super().__init__()
        self.actor = mlp([obs_size, *hidden, act_size])
        self.critic = mlp([obs_size, *hidden, 1])
        nn.init.orthogonal_(self.critic[-1].weight, gain=1.0)
        self.log_std = nn.Parameter(torch.full((act_size,), float(init_log_std)))

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden layer sizes of the actor."""
        return tuple(layer.out_features for layer in self.actor[:-1])

    def actor_weights(self) -> dict[str, np.ndarray]:
        """The actor's tensors under the policy-file names."""
        return {f"layers.{k}": v.detach().numpy().copy() for k, v in self.actor.state_dict().items()}


def share_flat_parameters(model: nn.Module) -> tuple[np.ndarray, dict[str, slice]]:
    """Move every parameter of `model` into one float32 numpy vector: the parameters become views of it (torch and
    numpy share the memory), so one vector operation updates them all. Returns the vector and each parameter's
    slice of it, by name."""
    named = list(model.named_parameters())
    flat = np.empty(sum(p.numel() for _, p in named), dtype=np.float32)
    slices, offset = {}, 0
    for name, parameter in named:
        slices[name] = slice(offset, offset + parameter.numel())
        flat[slices[name]] = parameter.detach().numpy().ravel()
        parameter.data = torch.from_numpy(flat[slices[name]]).view(parameter.shape)
        offset += parameter.numel()
    return flat, slices


class FlatAdam:
    """Adam (as torch.optim.Adam without weight decay) on a flat parameter vector, in place."""

    def __init__(self, parameters: np.ndarray, learning_rate: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-5):
        self.parameters, self.learning_rate, self.betas, self.eps = parameters, learning_rate, betas, eps
        self.first, self.second = np.zeros_like(parameters), np.zeros_like(parameters)
        self.steps = 0

    def step(self, gradient: np.ndarray) -> None:
        """Apply one update for `gradient` (same shape as the parameters)."""
        beta1, beta2 = self.betas
        self.steps += 1
        self.first *= beta1
        self.first += (1.0 - beta1) * gradient
        self.second *= beta2
        self.second += (1.0 - beta2) * gradient * gradient
        denominator = np.sqrt(self.second)
        denominator /= np.sqrt(1.0 - beta2**self.steps)
        denominator += self.eps
        self.parameters -= (self.learning_rate / (1.0 - beta1**self.steps)) * self.first / denominator


def _forward(layers, x: np.ndarray) -> list[np.ndarray]:
    """Activations of an MLP of (weight, bias, ...) layers, tanh between them: the input, each hidden layer's and
    the output."""
    activations = [x]
    for i, (weight, bias, *_) in enumerate(layers):
        x = x @ weight.T + bias
        if i < len(layers) - 1:
            np.tanh(x, out=x)
        activations.append(x)
    return activations


def _backward(layers, activations: list[np.ndarray], output_gradient: np.ndarray) -> None:
    """Write the (..., weight gradient, bias gradient) of each layer for d(loss)/d(output) = output_gradient."""
    delta = output_gradient
    for i in range(len(layers) - 1, -1, -1):
        weight, _, weight_gradient, bias_gradient = layers[i]
        np.matmul(delta.T, activations[i], out=weight_gradient)
        np.sum(delta, axis=0, out=bias_gradient)
        if i:
            delta = delta @ weight
            delta *= 1.0 - activations[i] * activations[i]


class NumpyActorCritic:
    """An ActorCritic computed in numpy on its own parameters (shared memory, see `share_flat_parameters`): acting
    during rollouts, and PPO's minibatch step with a hand-derived gradient, gradient clipping and Adam on the flat
    vector. For networks this small, torch's per-operation cost on CPU was most of PPO's time (README: training
    speed); test_policy_training checks the gradient and the Adam step against torch's."""

    def __init__(self, model: ActorCritic, config: PPOConfig):
        self.config = config
        self.flat, slices = share_flat_parameters(model)
        self.gradient = np.zeros_like(self.flat)

        def views(name: str) -> tuple[np.ndarray, np.ndarray]:
            shape = model.get_parameter(name).shape
            return self.flat[slices[name]].reshape(shape), self.gradient[slices[name]].reshape(shape)

        def layer(name: str) -> tuple[np.ndarray, ...]:
            (weight, weight_gradient), (bias, bias_gradient) = views(f"{name}.weight"), views(f"{name}.bias")
            return weight, bias, weight_gradient, bias_gradient

        self.actor = [layer(f"actor.{i}") for i in range(len(model.actor))]
        self.critic = [layer(f"critic.{i}") for i in range(len(model.critic))]
        self.log_std, self.log_std_gradient = views("log_std")
        self.optimizer = FlatAdam(self.flat, config.learning_rate)

    def value(self, obs: np.ndarray) -> np.ndarray:
        """State values of normalised observations, shape (batch,)."""
        return _forward(self.critic, np.asarray(obs, dtype=np.float32))[-1][:, 0]

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sampled actions, their log-probabilities, state values) for normalised observations."""
        obs = np.asarray(obs, dtype=np.float32)
        noise = rng.standard_normal((obs.shape[0], self.log_std.size))
        actions = _forward(self.actor, obs)[-1] + np.exp(self.log_std) * noise
        return actions, self._log_prob(noise), self.value(obs)

    def _log_prob(self, standardised: np.ndarray) -> np.ndarray:
        """Gaussian log-densities, summed over actions, of actions `standardised` to (a - mean) / std."""
        return (-0.5 * standardised * standardised - self.log_std).sum(-1) - LOG_SQRT_2PI * self.log_std.size

    def loss_gradient(self, obs, actions, old_log_prob, advantages, returns) -> np.ndarray:
        """Write into `self.gradient` the gradient of PPO's minibatch loss (clipped surrogate on normalised
        advantages, value_coef x squared value error, minus entropy_coef x entropy); returns the minibatch's
        log-probabilities under the current parameters."""
        config, size = self.config, obs.shape[0]
        std = np.exp(self.log_std)
        actor = _forward(self.actor, obs)
        standardised = (actions - actor[-1]) / std
        log_prob = self._log_prob(standardised)
        ratio = np.exp(log_prob - old_log_prob)
        advantages = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)
        # -min(r A, clip(r) A) has gradient -A wherever the unclipped term is the smaller one, else 0
        clipped = ((advantages > 0) & (ratio > 1 + config.clip)) | ((advantages < 0) & (ratio < 1 - config.clip))
        d_log_prob = np.where(clipped, 0.0, -advantages * ratio / size).astype(np.float32)
        _backward(self.actor, actor, d_log_prob[:, None] * standardised / std)
        self.log_std_gradient[:] = (d_log_prob[:, None] * (standardised * standardised - 1.0)).sum(0)
        self.log_std_gradient -= config.entropy_coef
        critic = _forward(self.critic, obs)
        _backward(self.critic, critic, (2.0 * config.value_coef / size) * (critic[-1] - returns[:, None]))
        return log_prob

    def minibatch_step(self, obs, actions, old_log_prob, advantages, returns) -> None:
        """One PPO minibatch update (float32 arrays): the adaptive learning rate if configured, the gradient, its
        clipping to max_grad_norm (as torch's clip_grad_norm_) and an Adam step."""
        log_prob = self.loss_gradient(obs, actions, old_log_prob, advantages, returns)
        if self.config.learning_rate_schedule == "adaptive":
            self.optimizer.learning_rate = adapted_learning_rate(self.optimizer.learning_rate, log_prob,
                                                                 old_log_prob, self.config.desired_kl)
        norm = float(np.sqrt(self.gradient @ self.gradient))
        self.gradient *= min(1.0, self.config.max_grad_norm / (norm + 1e-6))
        self.optimizer.step(self.gradient)


@dataclass
class TrainResult:
    """Outcome of `train_ppo`: the model, its normalisation statistics, and the learning curve.

    `steps` counts every environment step the model has seen, including those of a warm start.
    """

    model: ActorCritic
    obs_stats: RunningMeanStd
    return_stats: RunningMeanStd
    steps: int
    curve: list[tuple[int, float]] = field(default_factory=list)  # (env steps, mean return of finished episodes)
    successes: list[tuple[int, float]] = field(default_factory=list)  # (env steps, success rate), if reported

    @property
    def obs_mean(self) -> np.ndarray:
        """Mean of the observations seen (the policy file's normalisation)."""
        return self.obs_stats.mean.copy()

    @property
    def obs_std(self) -> np.ndarray:
        """Standard deviation of the observations seen."""
        return self.obs_stats.std.copy()


def save_checkpoint(result: TrainResult, path: str | os.PathLike) -> Path:
    """Write everything PPO needs to continue training (actor, critic, log-std, normalisation) as safetensors."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in result.model.state_dict().items()}
    for name, stats in (("obs", result.obs_stats), ("return", result.return_stats)):
        tensors[f"{name}.mean"] = torch.as_tensor(np.atleast_1d(stats.mean), dtype=torch.float64)
        tensors[f"{name}.var"] = torch.as_tensor(np.atleast_1d(stats.var), dtype=torch.float64)
        tensors[f"{name}.count"] = torch.tensor([stats.count], dtype=torch.float64)
    path = Path(path)
    safetensors.torch.save_file(tensors, str(path), metadata={"steps": str(result.steps)})
    return path


def load_checkpoint(path: str | os.PathLike) -> TrainResult:
    """Read a `save_checkpoint` file (safetensors: no code is executed) into a TrainResult to warm-start from."""
    path = Path(path)
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            steps = int(handle.metadata()["steps"])
        actor = sorted(k for k in tensors if k.startswith("model.actor.") and k.endswith(".weight"))
        sizes = [tensors[actor[0]].shape[1], *(tensors[k].shape[0] for k in actor)]
        model = ActorCritic(sizes[0], sizes[-1], tuple(sizes[1:-1]), 0.0)
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    except (OSError, KeyError, IndexError, ValueError, RuntimeError, safetensors.SafetensorError) as exc:
        raise ValueError(f"{path}: not a PPO checkpoint ({exc})") from None
    stats = []
    for name, shape in (("obs", (sizes[0],)), ("return", ())):
        rms = RunningMeanStd(shape)
        rms.mean = tensors[f"{name}.mean"].numpy().reshape(shape)
        rms.var = tensors[f"{name}.var"].numpy().reshape(shape)
        rms.count = float(tensors[f"{name}.count"][0])
        stats.append(rms)
    return TrainResult(model, stats[0], stats[1], steps)


def train_ppo(envs: gym.vector.VectorEnv | Callable[[], gym.Env], steps: int, config: PPOConfig = PPOConfig(),
              progress: bool = True, description: str = "ppo", start: TrainResult | None = None,
              on_update: Callable[[TrainResult], None] | None = None) -> TrainResult:
    """Train a Gaussian policy with PPO on a vector environment.

    Actions are sampled unbounded and clipped to [-1, 1] before reaching the environments, whose action
    space must be Box(-1, 1) (an action head in front, see `tasks.TaskSetup.vector`). Episodes that end by
    truncation bootstrap from the critic's value of the final observation.

    Args:
        envs: `config.num_envs` environments with same-step autoreset (e.g. `TaskSetup.vector`; the caller
            closes them), or a function creating one environment, run as a SyncVectorEnv of `config.num_envs`.
            Randomization is the environments' business, per episode.
        steps: total environment steps (rounded up to whole rollouts).
        config: hyperparameters and seed.
        progress: show a tqdm progress bar.
        start: warm start: continue from this result's model and normalisation statistics (a fresh optimiser;
            its network sizes win over config.hidden). The new curve continues its step count.
        on_update: called with the result so far after every update (e.g. active DR moving its particles).
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    owned = not isinstance(envs, gym.vector.VectorEnv)
    if owned:
        envs = gym.vector.SyncVectorEnv([envs] * config.num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    if envs.num_envs != config.num_envs:
        raise ValueError(f"PPO config has num_envs={config.num_envs}, the vector environment {envs.num_envs}")
    if envs.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.SAME_STEP:
        raise ValueError(f"PPO needs same-step autoreset, the environment has {envs.metadata.get('autoreset_mode')}")
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # the networks are tiny: BLAS threads only contend
            return _train(envs, steps, config, rng, progress, description, start, on_update)
    finally:
        if owned:
            envs.close()


def _train(envs, steps, config: PPOConfig, rng, progress, description, start, on_update) -> TrainResult:
    space = envs.single_action_space
    if not (isinstance(space, gym.spaces.Box) and np.all(space.low == -1) and np.all(space.high == 1)):
        raise ValueError(f"PPO needs a Box(-1, 1) action space, got {space}")
    n_envs, horizon = config.num_envs, config.rollout_steps
    obs_size, act_size = envs.single_observation_space.shape[0], space.shape[0]
    if start is None:
        model = ActorCritic(obs_size, act_size, config.hidden, config.init_log_std)
        obs_stats, ret_stats = RunningMeanStd((obs_size,)), RunningMeanStd()
    else:
        model, obs_stats, ret_stats = copy.deepcopy((start.model, start.obs_stats, start.return_stats))
        sizes = (model.actor[0].in_features, model.actor[-1].out_features)
        if sizes != (obs_size, act_size):
            raise ValueError(f"warm start has {sizes[0]} observations and {sizes[1]} actions; the environment "
                             f"has {obs_size} and {act_size}")
    discounted = np.zeros(n_envs)

    def normalise(o: np.ndarray) -> np.ndarray:
        return np.clip((o - obs_stats.mean) / obs_stats.std, -config.obs_clip, config.obs_clip)

    buf_obs = np.zeros((horizon, n_envs, obs_size))
    buf_act = np.zeros((horizon, n_envs, act_size))
    buf_logp, buf_rew, buf_val, buf_done = (np.zeros((horizon, n_envs)) for _ in range(4))
    raw_obs, _ = envs.reset(seed=int(rng.integers(2**31)))
    obs_stats.update(raw_obs)
    episode_return, finished, finished_success = np.zeros(n_envs), [], []
    result = TrainResult(model, obs_stats, ret_stats, 0 if start is None else start.steps)
    updates = -(-steps // (n_envs * horizon))
    bar = tqdm(total=updates * n_envs * horizon, desc=description, unit="step", disable=not progress, leave=False)
    acting = NumpyActorCritic(model, config)
    for _ in range(updates):
        for t in range(horizon):
            obs = normalise(raw_obs)
            buf_act[t], buf_logp[t], buf_val[t] = acting.act(obs, rng)
            buf_obs[t] = obs
            raw_obs, reward, terminated, truncated, info = envs.step(np.clip(buf_act[t], -1, 1).astype(np.float32))
            done = terminated | truncated
            episode_return += reward
            # Return-based reward scaling (as in many PPO implementations): divide by the std of discounted returns.
            discounted = discounted * config.gamma + reward
            ret_stats.update(discounted)
            scaled = reward / ret_stats.std
            if np.any(truncated & ~terminated):
                final = np.stack(info["final_obs"][truncated & ~terminated])
                scaled[truncated & ~terminated] += config.gamma * acting.value(normalise(final))
            buf_rew[t], buf_done[t] = scaled, done
            for i in np.flatnonzero(done):
                finished.append(episode_return[i])
                if "final_info" in info and "is_success" in info["final_info"]:
                    finished_success.append(float(info["final_info"]["is_success"][i]))
            episode_return[done], discounted[done] = 0.0, 0.0
            obs_stats.update(raw_obs)
        result.steps += n_envs * horizon
        bar.update(n_envs * horizon)
        if finished:
            result.curve.append((result.steps, float(np.mean(finished))))
            bar.set_postfix(ret=f"{result.curve[-1][1]:.1f}")
            finished = []
        if finished_success:
            result.successes.append((result.steps, float(np.mean(finished_success))))
            finished_success = []
        last_value = acting.value(normalise(raw_obs))
        _update(acting, config, rng, buf_obs, buf_act, buf_logp, buf_rew, buf_val, buf_done, last_value)
        if on_update is not None:
            on_update(result)
    bar.close()
    return result


def adapted_learning_rate(learning_rate: float, new_log_prob: np.ndarray, old_log_prob: np.ndarray,
                          desired_kl: float) -> float:
    """The adaptive schedule's next learning rate (see PPOConfig.learning_rate_schedule), from the KL estimate
    E[r - 1 - log r]."""
    log_ratio = new_log_prob - old_log_prob
    kl = float((np.exp(log_ratio) - 1.0 - log_ratio).mean())
    if kl > 2.0 * desired_kl:
        return max(1e-5, learning_rate / 1.5)
    if kl < desired_kl / 2.0:
        return min(1e-2, learning_rate * 1.5)
    return learning_rate


def _update(learner: NumpyActorCritic, config, rng, obs, act, logp, rew, val, done, last_value) -> None:
    horizon = rew.shape[0]
    advantages = np.zeros_like(rew)
    gae = 0.0
    for t in reversed(range(horizon)):
        next_value = last_value if t == horizon - 1 else val[t + 1]
        not_done = 1.0 - done[t]
        delta = rew[t] + config.gamma * next_value * not_done - val[t]
        gae = delta + config.gamma * config.gae_lambda * not_done * gae
        advantages[t] = gae
    returns = advantages + val
    batch = [a.reshape(horizon * rew.shape[1], *a.shape[2:]).astype(np.float32)
             for a in (obs, act, logp, advantages, returns)]
    size = batch[0].shape[0]
    for _ in range(config.epochs):
        order = rng.permutation(size)
        shuffled = [a[order] for a in batch]
        for start in range(0, size, config.minibatch_size):
            learner.minibatch_step(*(a[start:start + config.minibatch_size] for a in shuffled))
