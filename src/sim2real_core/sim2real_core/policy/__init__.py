"""Policies: training under randomization, self-describing files, serving through a safety layer.

- safety:      the safety layer every torque command passes (limits, rate, joint-limit guard, NaN, watchdog)
- policy_file: safetensors weights + YAML sidecar, evaluated in numpy (`load_policy`, `save_policy`)
- tasks:       task adapters (FR3 reach/push, gymnasium), distributions none/uniform/oracle/FILE, action head
- ppo:         PPO on vectorized gymnasium environments (torch, CPU)
- training:    `train_policy`: PPO -> policy file + learning curve
- evaluation:  `evaluate`: returns and success with 95 % confidence intervals; `ReachJudge` for runs over DDS
- serving:     the policy server's ROS-free logic (runner, latency and period statistics)
"""
