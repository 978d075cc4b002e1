"""Where the puck is, from the workspace camera: a small network trained on rendered images.

`render_puck_images` renders the FR3 workspace (sim.camera) with the puck at random positions on the table and the
arm at random poses near home (it occludes the puck now and then), under appearances drawn by a caller's sampler:
the nominal look, a visual-randomization distribution, or a reality proxy's hidden look. `PuckLocator` is a
three-layer convolutional network regressing the puck's table position (x, y) [m] from an image;
`train_locator` fits it with Adam on the mean squared error of standardized positions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .sim.camera import WorkspaceCamera
from .sim.parameters import ParameterSpace
from .sim.simulator import Simulator

PUCK_BOX = ((0.35, -0.2), (0.65, 0.2))  # table positions [m] the puck is placed in: (x, y) low, high
POSE_SPREAD = 0.15  # std of each arm joint's offset from home [rad]


@dataclass(frozen=True)
class PuckImages:
    """Rendered images (n, height, width, 3) uint8 and the puck's true table positions (n, 2) [m]."""

    images: np.ndarray
    positions: np.ndarray


def render_puck_images(count: int, appearance: Callable[[np.random.Generator], np.ndarray] | None,
                       space: ParameterSpace | None, seed: int, width: int = 64, height: int = 48) -> PuckImages:
    """`count` images of the puck at uniform random positions in PUCK_BOX, the arm at random poses near home.

    Args:
      appearance: draws an appearance vector of `space` per image (None: the model's own look).
      space: the appearance's parameter space (e.g. fr3_appearance).
      seed: seeds positions, poses, appearances and image noise.
    """
    rng = np.random.default_rng(seed)
    sim = Simulator("fr3_push")
    camera = WorkspaceCamera(sim.model, width, height, space=space if appearance is not None else None, seed=seed)
    puck = sim.model.jnt_qposadr[sim.model.joint("puck").id]
    images = np.zeros((count, height, width, 3), dtype=np.uint8)
    positions = rng.uniform(PUCK_BOX[0], PUCK_BOX[1], (count, 2))
    try:
        for i in range(count):
            qpos = sim.model.key(sim.robot.home_keyframe).qpos.copy()
            qpos[sim.qpos_index] += rng.normal(0.0, POSE_SPREAD, sim.robot.dof)
            qpos[puck:puck + 2] = positions[i]
            sim.reset(qpos=qpos)
            if appearance is not None:
                camera.set_appearance(appearance(rng))
            images[i] = camera.render(sim.data)
    finally:
        camera.close()
    return PuckImages(images, positions)


class PuckLocator(nn.Module):
    """Image (batch, 3, height, width) in [0, 1] -> standardized puck position (batch, 2)."""

    def __init__(self, height: int, width: int):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        size = 32 * -(-height // 8) * -(-width // 8)
        self.head = nn.Sequential(nn.Linear(size, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


@dataclass
class TrainedLocator:
    """A trained PuckLocator and the position scaling it predicts in."""

    network: PuckLocator
    center: np.ndarray
    scale: np.ndarray

    def locate(self, images: np.ndarray) -> np.ndarray:
        """Puck table positions (n, 2) [m] from uint8 images (n, height, width, 3)."""
        with torch.no_grad():
            out = self.network(_tensor(images)).numpy()
        return out * self.scale + self.center


def _tensor(images: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0


def train_locator(data: PuckImages, epochs: int = 30, batch: int = 64, learning_rate: float = 1e-3,
                  seed: int = 0) -> TrainedLocator:
    """Fit a PuckLocator to `data` (Adam, mean squared error of positions standardized to the box)."""
    torch.manual_seed(seed)
    low, high = np.array(PUCK_BOX[0]), np.array(PUCK_BOX[1])
    center, scale = (low + high) / 2.0, (high - low) / 2.0
    n, height, width, _ = data.images.shape
    network = PuckLocator(height, width)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    images = _tensor(data.images)
    targets = torch.as_tensor((data.positions - center) / scale, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = torch.as_tensor(order[start:start + batch])
            loss = (network(images[idx]) - targets[idx]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return TrainedLocator(network.eval(), center, scale)


def position_errors(locator: TrainedLocator, data: PuckImages) -> np.ndarray:
    """Each image's error of the located puck position [m], (n,)."""
    return np.linalg.norm(locator.locate(data.images) - data.positions, axis=1)
