"""Guided domain randomization: methods that move the training distribution with the policy's own experience
(SimOpt: target rollouts)."""
