"""Which PPO to train with: ours against Stable-Baselines3 and rsl_rl on the same batched reach environments.

Every library trains the reach task on the nominal simulator on `task.vector(16)` (one mujoco.batch kernel) with one
schedule: 16 environments x 128 steps per update, 10 epochs of 256-sample minibatches, gamma 0.98, lambda 0.95,
clip 0.2, learning rate 3e-4 fixed, no entropy bonus, value coefficient 0.5, gradient norm 0.5, tanh (64, 64) actor
and critic, initial action std exp(-0.5), observations normalised by running statistics, one torch thread.
Each library keeps its own remaining choices (SB3: VecNormalize also scales rewards; rsl_rl: clipped value loss,
no reward scaling; ours: return-based reward scaling).

Our PPO also runs with fewer, larger minibatch steps (OUR_SCHEDULES), so that a faster schedule is taken only if
it learns as much per step. `python bench/bench_ppo_libraries.py NAME...` runs only the named rows.

Prints, per library and seed, training steps/s and the success rate and mean return of the final deterministic
policy over 200 evaluation episodes (the same evaluator for all), then each library's means with 95 % intervals
over seeds and episodes, the difference to ours, and its speed as a ratio of ours measured in the same run.

The libraries are not dependencies of the project: `make bench-ppo-libraries` installs the pinned
bench/requirements-ppo-libraries.txt into build/ppo-libraries and runs this file.
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sim2real_core.policy.policy_file import mlp_numpy
from sim2real_core.policy.ppo import PPOConfig, train_ppo
from sim2real_core.policy.seed_statistics import seed_difference, seed_estimate
from sim2real_core.policy.tasks import make_task, ppo_defaults

LIBRARIES = Path(__file__).resolve().parents[1] / "build" / "ppo-libraries"
TASK, NUM_ENVS, STEPS, SEEDS, EVAL_EPISODES = "reach", 16, 300_000, 3, 200
SCHEDULE = {"num_envs": NUM_ENVS, "rollout_steps": 128, "epochs": 10, "minibatch_size": 256, "gamma": 0.98,
            "gae_lambda": 0.95, "clip": 0.2, "learning_rate": 3e-4, "entropy_coef": 0.0, "value_coef": 0.5,
            "max_grad_norm": 0.5, "hidden": (64, 64), "init_log_std": -0.5}
# Our PPO on SCHEDULE ("ours", the reference of every comparison) and with fewer, larger minibatch steps.
OUR_SCHEDULES = {"ours": {}, "ours, minibatch 512": {"minibatch_size": 512},
                 "ours, 32 x 64, minibatch 512": {"num_envs": 32, "rollout_steps": 64, "minibatch_size": 512},
                 "ours, 32 x 64": {"num_envs": 32, "rollout_steps": 64},
                 "ours, 32 envs": {"num_envs": 32}, "ours, 64 envs": {"num_envs": 64},
                 "ours, 64 x 32": {"num_envs": 64, "rollout_steps": 32}}


def episodes(envs, act, count: int, seed: int) -> tuple[list[float], list[float]]:
    """(outcomes (1: success), returns) of `count` episodes under the deterministic policy `act` (raw observations
    -> actions)."""
    obs, _ = envs.reset(seed=seed)
    outcomes: list[float] = []
    returns: list[float] = []
    running = np.zeros(envs.num_envs)
    while len(outcomes) < count:
        obs, reward, terminated, truncated, info = envs.step(np.clip(act(obs), -1.0, 1.0).astype(np.float32))
        running += reward
        ended = terminated | truncated
        if ended.any():
            outcomes.extend(info["final_info"]["is_success"][ended].astype(float).tolist())
            returns.extend(running[ended].tolist())
            running[ended] = 0.0
    return outcomes[:count], returns[:count]


def train_ours(envs, seed: int, overrides: dict | None = None):
    """Our PPO, on SCHEDULE or with some of its settings overridden; returns the deterministic policy."""
    config = PPOConfig(**{**ppo_defaults(TASK), **SCHEDULE, **(overrides or {}), "seed": seed})
    result = train_ppo(envs, STEPS, config, progress=False)

    layers = [(layer.weight.detach().numpy().T, layer.bias.detach().numpy()) for layer in result.model.actor]

    def act(obs: np.ndarray) -> np.ndarray:
        return mlp_numpy(layers, np.clip((obs - result.obs_mean) / result.obs_std, -config.obs_clip, config.obs_clip))
    return act


def train_sb3(envs, seed: int):
    """Stable-Baselines3's PPO behind VecNormalize; returns the deterministic policy."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

    class GymnasiumVector(VecEnv):
        """SB3's VecEnv over a gymnasium VectorEnv that autoresets in the same step."""

        def __init__(self, vector):
            super().__init__(vector.num_envs, vector.single_observation_space, vector.single_action_space)
            self.vector, self._actions = vector, None

        def reset(self):
            obs, _ = self.vector.reset(seed=seed)
            return obs

        def step_async(self, actions):
            self._actions = np.clip(actions, -1.0, 1.0).astype(np.float32)

        def step_wait(self):
            obs, reward, terminated, truncated, info = self.vector.step(self._actions)
            infos = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(terminated | truncated):
                infos[i] = {"terminal_observation": info["final_obs"][i],
                            "TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
            return obs, reward.astype(np.float32), terminated | truncated, infos

        def close(self):
            pass

        def get_attr(self, name, indices=None):
            return [getattr(self.vector, name)] * self.num_envs

        def set_attr(self, name, value, indices=None):
            raise NotImplementedError(name)

        def env_method(self, name, *args, indices=None, **kwargs):
            raise NotImplementedError(name)

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * self.num_envs

    venv = VecNormalize(GymnasiumVector(envs), norm_obs=True, norm_reward=True, clip_obs=10.0,
                        gamma=SCHEDULE["gamma"])
    model = PPO("MlpPolicy", venv, n_steps=SCHEDULE["rollout_steps"], batch_size=SCHEDULE["minibatch_size"],
                n_epochs=SCHEDULE["epochs"], gamma=SCHEDULE["gamma"], gae_lambda=SCHEDULE["gae_lambda"],
                clip_range=SCHEDULE["clip"], learning_rate=SCHEDULE["learning_rate"], ent_coef=0.0,
                vf_coef=SCHEDULE["value_coef"], max_grad_norm=SCHEDULE["max_grad_norm"], seed=seed, device="cpu",
                policy_kwargs={"net_arch": {"pi": list(SCHEDULE["hidden"]), "vf": list(SCHEDULE["hidden"])},
                               "activation_fn": nn.Tanh, "log_std_init": SCHEDULE["init_log_std"]})
    model.learn(STEPS)
    venv.training = False
    return lambda obs: model.predict(venv.normalize_obs(obs), deterministic=True)[0]


def train_rsl_rl(envs, seed: int):
    """rsl_rl's PPO (OnPolicyRunner); returns the deterministic policy."""
    from rsl_rl.env import VecEnv
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict

    class GymnasiumVector(VecEnv):
        """rsl_rl's VecEnv over a gymnasium VectorEnv that autoresets in the same step."""

        def __init__(self, vector):
            self.vector = vector
            self.num_envs, self.num_actions = vector.num_envs, vector.single_action_space.shape[0]
            self.max_episode_length = 10**9
            self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long)
            self.device, self.cfg = "cpu", {}
            self._obs, _ = vector.reset(seed=seed)

        def _pack(self, obs):
            return TensorDict({"policy": torch.as_tensor(obs, dtype=torch.float32)}, batch_size=[self.num_envs])

        def get_observations(self):
            return self._pack(self._obs)

        def step(self, actions):
            self._obs, reward, terminated, truncated, _ = self.vector.step(
                actions.clamp(-1.0, 1.0).numpy().astype(np.float32))
            return (self._pack(self._obs), torch.as_tensor(reward, dtype=torch.float32),
                    torch.as_tensor(terminated | truncated, dtype=torch.long),
                    {"time_outs": torch.as_tensor(truncated & ~terminated, dtype=torch.long)})

    model = {"class_name": "MLPModel", "hidden_dims": list(SCHEDULE["hidden"]), "activation": "tanh",
             "obs_normalization": True}
    cfg = {"seed": seed, "num_steps_per_env": SCHEDULE["rollout_steps"], "save_interval": 10**9,
           "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
           "algorithm": {"class_name": "PPO", "num_learning_epochs": SCHEDULE["epochs"],
                         "num_mini_batches": NUM_ENVS * SCHEDULE["rollout_steps"] // SCHEDULE["minibatch_size"],
                         "clip_param": SCHEDULE["clip"], "gamma": SCHEDULE["gamma"], "lam": SCHEDULE["gae_lambda"],
                         "value_loss_coef": SCHEDULE["value_coef"], "entropy_coef": 0.0,
                         "learning_rate": SCHEDULE["learning_rate"], "max_grad_norm": SCHEDULE["max_grad_norm"],
                         "schedule": "fixed"},
           "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution",
                                                   "init_std": float(np.exp(SCHEDULE["init_log_std"]))}},
           "critic": model}
    torch.manual_seed(seed)
    runner = OnPolicyRunner(GymnasiumVector(envs), cfg, log_dir=None, device="cpu")
    runner.learn(-(-STEPS // (NUM_ENVS * SCHEDULE["rollout_steps"])))
    actor = runner.alg.actor.eval()

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(TensorDict({"policy": torch.as_tensor(obs, dtype=torch.float32)},
                                    batch_size=[obs.shape[0]])).numpy()
    return act


def main(names: list[str] | None = None) -> None:
    """Train every library (or those `names`) SEEDS times, print speeds, success rates and their intervals."""
    sys.path.insert(0, str(LIBRARIES))
    torch.set_num_threads(1)
    task = make_task(TASK, "none")
    speeds: dict[str, list[float]] = {}
    scores: dict[str, dict[str, list[list[float]]]] = {}
    trainers = [(name, functools.partial(train_ours, overrides=overrides), overrides.get("num_envs", NUM_ENVS))
                for name, overrides in OUR_SCHEDULES.items()]
    trainers += [("stable-baselines3", train_sb3, NUM_ENVS), ("rsl_rl", train_rsl_rl, NUM_ENVS)]
    for name, train, num_envs in trainers:
        if names and name not in names:
            continue
        for seed in range(SEEDS):
            envs = task.vector(num_envs)
            try:
                start = time.perf_counter()
                act = train(envs, seed)
                speed = STEPS / (time.perf_counter() - start)
            except ImportError as exc:
                print(f"   {name}: not installed ({exc}); `make bench-ppo-libraries` installs it", flush=True)
                break
            envs.close()
            outcomes, returns = episodes(task.vector(NUM_ENVS), act, EVAL_EPISODES, seed=10_000 + seed)
            speeds.setdefault(name, []).append(speed)
            scores.setdefault(name, {"success": [], "return": []})
            scores[name]["success"].append(outcomes)
            scores[name]["return"].append(returns)
            print(f"   {name:18s} seed {seed}: {speed:7,.0f} steps/s, success {np.mean(outcomes):.2f}, "
                  f"return {np.mean(returns):.1f}", flush=True)
    print(f"   {TASK} on the nominal simulator, {STEPS} steps, {EVAL_EPISODES} evaluation episodes per seed "
          f"(95 % intervals over seeds and episodes):")
    for name in scores:
        line = (f"   {name:18s} {np.mean(speeds[name]):7,.0f} steps/s "
                f"({np.mean(speeds[name]) / np.mean(speeds['ours']):.2f} x ours)")
        for what, per_seed in scores[name].items():
            estimate = seed_estimate(per_seed)
            line += f"; {what} {estimate.mean:.2f} [{estimate.interval[0]:.2f}, {estimate.interval[1]:.2f}]"
            if name != "ours":
                difference = seed_difference(per_seed, scores["ours"][what])
                line += (f", minus ours {difference.mean:+.2f} [{difference.interval[0]:+.2f}, "
                         f"{difference.interval[1]:+.2f}]{' (significant)' if difference.significant else ''}")
        print(line)

if __name__ == "__main__":
    main(sys.argv[1:])
