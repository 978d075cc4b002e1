"""Guided domain randomization: methods that move the training distribution with the policy's own experience
(SimOpt: target rollouts; automatic domain randomization: the policy's performance at the ranges' edges; active
domain randomization: where the policy's experience differs from the reference simulator's)."""
