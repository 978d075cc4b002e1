"""The workspace camera: MuJoCo offscreen rendering of a simulation, with an appearance.

An appearance is a vector of a parameter space's visual kinds (sim.parameters.VISUAL_KINDS; the FR3's in
config/parameter_spaces/fr3_appearance.yaml): every light's intensity, geoms' colours, the camera's position offset
and field of view, and Gaussian image noise. Visual randomization draws it like the dynamics parameters (a
Distribution over that space); the reality proxy renders with its own hidden appearance (the reality file's
`appearance`). Rendering uses the MuJoCo model of the simulation (its geometry and poses) through a copy whose
visual fields the appearance writes, so nothing of the physics changes.

Headless machines render with EGL (Debian: libegl1, libegl-mesa0, libgl1-mesa-dri; MUJOCO_GL=egl, the package's
default) or OSMesa (MUJOCO_GL=osmesa, libosmesa6).
"""
from __future__ import annotations

import copy
import os

import mujoco
import numpy as np

from ..config import ConfigError
from .parameters import VISUAL_KINDS, ParameterSpace

DEFAULT_CAMERA = "workspace"  # the fixed camera of the FR3 model (sim2real_core/models/fr3.xml)
APPEARANCE_SPACE = "fr3_appearance"  # the FR3 workspace's appearance parameters (config/parameter_spaces)
_CHANNELS = {"geom_red": 0, "geom_green": 1, "geom_blue": 2}
_AXES = {"camera_x": 0, "camera_y": 1, "camera_z": 2}


class Appearance:
    """Writes the visual parameters of a space's vectors into a rendering model.

    Args:
      space: a parameter space; its parameters of VISUAL_KINDS are applied, the others ignored.
      nominal_model: the unmodified model (colours, lights and cameras are set relative to or in place of its).
    """

    def __init__(self, space: ParameterSpace, nominal_model: mujoco.MjModel):
        self.space = space
        self._targets = []
        for i, p in enumerate(space):
            if p.kind not in VISUAL_KINDS:
                continue
            obj = VISUAL_KINDS[p.kind]
            index = -1 if obj is None else mujoco.mj_name2id(nominal_model, obj, p.element)
            if obj is not None and index < 0:
                raise ConfigError(f"parameter {p.name!r}: the model has no {obj.name[6:].lower()} named {p.element!r}")
            self._targets.append((i, p.kind, index))
        self._diffuse = nominal_model.light_diffuse.copy()
        self._cam_pos = nominal_model.cam_pos.copy()

    def apply(self, model: mujoco.MjModel, vector: np.ndarray) -> float:
        """Write `vector`'s appearance into `model` (a copy of the nominal model); returns its image noise std."""
        vector = self.space.validate(vector)
        noise = 0.0
        model.cam_pos[:] = self._cam_pos
        model.light_diffuse[:] = self._diffuse
        for i, kind, index in self._targets:
            value = float(vector[i])
            if kind == "light_intensity":
                model.light_diffuse[:] = self._diffuse * value
            elif kind in _CHANNELS:
                model.geom_rgba[index, _CHANNELS[kind]] = value
                model.geom_matid[index] = -1  # the colour, not a material, decides
            elif kind in _AXES:
                model.cam_pos[index, _AXES[kind]] = self._cam_pos[index, _AXES[kind]] + value
            elif kind == "camera_fovy":
                model.cam_fovy[index] = value
            elif kind == "image_noise_std":
                noise = value
        return noise


class WorkspaceCamera:
    """Renders a fixed camera of a simulation's model as RGB images, with an appearance.

    Args:
      model: the simulation's model (e.g. Simulator.model); the camera renders a copy.
      width, height: image size [pixels].
      camera: the model camera's name.
      space: the appearance's parameter space (None: the model's own appearance, no noise).
      seed: seed of the image noise.
    """

    def __init__(self, model: mujoco.MjModel, width: int = 128, height: int = 96, camera: str = DEFAULT_CAMERA,
                 space: ParameterSpace | None = None, seed: int | None = None):
        if not (8 <= width <= 4096 and 8 <= height <= 4096):
            raise ValueError(f"camera image size must be 8..4096 pixels a side, got {width} x {height}")
        self.model = copy.copy(model)
        self.camera = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if self.camera < 0:
            raise ConfigError(f"the model has no camera named {camera!r}")
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
        self.width, self.height = int(width), int(height)
        self.appearance = Appearance(space, model) if space is not None else None
        self.noise_std = 0.0
        self.rng = np.random.default_rng(seed)
        try:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        except Exception as exc:  # noqa: BLE001  (each OpenGL backend fails in its own way)
            raise RuntimeError(f"offscreen rendering failed with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}: "
                               f"{exc}. Headless machines need EGL (apt: libegl1 libegl-mesa0 libgl1-mesa-dri) or "
                               "OSMesa (libosmesa6, MUJOCO_GL=osmesa)") from exc

    def set_appearance(self, vector: np.ndarray) -> None:
        """Render from now on with this appearance vector (of the camera's space)."""
        if self.appearance is None:
            raise ValueError("this camera has no appearance space")
        self.noise_std = self.appearance.apply(self.model, vector)

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """The camera's (height, width, 3) uint8 RGB image of `data`'s state, with the appearance's noise."""
        self._renderer.update_scene(data, camera=self.camera)
        image = self._renderer.render()
        if self.noise_std > 0:
            noisy = image + self.rng.normal(0.0, 255.0 * self.noise_std, image.shape)
            image = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        return image

    def intrinsics(self) -> np.ndarray:
        """The pinhole camera matrix K (3 x 3) of the current field of view, square pixels, centred."""
        fy = 0.5 * self.height / np.tan(np.radians(self.model.cam_fovy[self.camera]) / 2.0)
        return np.array([[fy, 0.0, (self.width - 1) / 2.0], [0.0, fy, (self.height - 1) / 2.0], [0.0, 0.0, 1.0]])

    def close(self) -> None:
        """Free the OpenGL context."""
        self._renderer.close()
