"""Policies: the safety layer, self-describing policy files, PPO training, evaluation."""
