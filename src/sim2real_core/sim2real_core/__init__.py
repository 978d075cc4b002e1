"""sim2real core."""
import os

# Offscreen rendering (sim.camera) without a display: MuJoCo picks its OpenGL backend when it is first imported,
# which this package's modules do; a MUJOCO_GL the user set wins.
os.environ.setdefault("MUJOCO_GL", "egl")
