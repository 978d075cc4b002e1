"""MuJoCo simulation: named parameters, distributions over them, the FR3 simulator and its tasks."""
