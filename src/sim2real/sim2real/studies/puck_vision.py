"""Visual randomization on one vision component: the puck's table position from the workspace camera.

Per seed, two PuckLocators train on the same number of rendered images: one under the model's own look (no
visual randomization), one under appearances drawn uniformly from the appearance space's box (lighting, table and
puck colours, camera pose and field of view, image noise). Both are then scored on held-out images in the model's
look and in each reality proxy's hidden look (its file's `appearance`), which neither saw. Each seed is a task of
the cluster. The report (vision.md, vision.yaml): per look and training, the mean position error [cm] with a 95 %
interval over seeds and images, and the difference randomized minus not, paired by seed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from sim2real_core.cluster import Cluster, Task, progress_lines
from sim2real_core.config import save_yaml
from sim2real_core.policy.seed_statistics import seed_difference, seed_estimate
from sim2real_core.sim.camera import APPEARANCE_SPACE

TRAININGS = ("nominal look", "visual DR")
NOMINAL_LOOK = "model"  # the held-out look that is the nominal simulator's


def _seed(proxies: list[str], images: int, test_images: int, epochs: int, seed: int) -> dict:
    """Train both locators with one seed and score them on every look: per look and training, the errors [m] (a
    task)."""
    import torch

    from sim2real_core.sim.distributions import Distribution
    from sim2real_core.sim.parameters import load_parameter_space
    from sim2real_core.sim.reality import load_reality
    from sim2real_core.vision import position_errors, render_puck_images, train_locator

    torch.set_num_threads(1)
    space = load_parameter_space(APPEARANCE_SPACE)
    box = Distribution.uniform(space)
    draws = {"nominal look": None, "visual DR": lambda rng: box.sample(rng, 1)[0]}
    locators = {name: train_locator(render_puck_images(images, draw, space, seed=10 * seed + k), epochs=epochs,
                                    seed=seed) for k, (name, draw) in enumerate(draws.items())}
    looks = {NOMINAL_LOOK: None}
    for proxy in proxies:
        truth = load_reality(proxy).appearance
        if truth is None:
            raise ValueError(f"reality profile {proxy} has no appearance: nothing to score the camera on")
        looks[proxy] = lambda rng, truth=truth: truth
    errors: dict = {}
    for k, (look, draw) in enumerate(looks.items()):
        held_out = render_puck_images(test_images, draw, space, seed=10_000 + 10 * seed + k)
        for name, locator in locators.items():
            errors.setdefault(look, {})[name] = position_errors(locator, held_out).tolist()
    return errors


def run_vision_study(out_dir: str | os.PathLike, proxies: list[str], seeds: int = 3, images: int = 1500,
                     test_images: int = 300, epochs: int = 30, cluster: Cluster | None = None,
                     progress=print) -> dict:
    """Run the study on `cluster` (default: in this process) into out_dir; write vision.md and vision.yaml; return
    the results."""
    if seeds < 1 or images < 1 or test_images < 1 or epochs < 1:
        raise ValueError(f"seeds, images, test_images and epochs must be >= 1, got {seeds}, {images}, "
                         f"{test_images}, {epochs}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cluster = cluster or Cluster(workers=0)
    started = time.perf_counter()
    report = progress_lines(progress)

    tasks = [Task(f"seed {seed}", _seed, (list(proxies), images, test_images, epochs, seed)) for seed in range(seeds)]
    outcomes = cluster.run(tasks, report)
    results: dict = {"proxies": list(proxies), "seeds": seeds, "images": images, "test_images": test_images,
                     "epochs": epochs, "appearance_space": APPEARANCE_SPACE,
                     "failed": {o.name: o.error for o in outcomes if not o.ok},
                     "errors": [o.value for o in outcomes if o.ok]}
    results["seconds"] = round(time.perf_counter() - started, 1)
    save_yaml(out / "vision.yaml", results)
    (out / "vision.md").write_text(markdown(results))
    return results


def markdown(results: dict) -> str:
    """The report: mean position error [cm] per look and training, intervals, paired differences."""
    seeds = results["errors"]
    lines = ["# The puck located from the workspace camera, with and without visual randomization", "",
             f"{len(seeds)} seed{'' if len(seeds) == 1 else 's'}; per seed {results['images']} training images per "
             f"locator, {results['test_images']} held-out images per look; mean position error [cm] with 95 % "
             "intervals over seeds and images.", "",
             "| look | " + " | ".join(TRAININGS) + " | visual DR minus nominal look |", "|---|---|---|---|"]
    for look in (seeds[0] if seeds else {}):
        cells = []
        for name in TRAININGS:
            estimate = seed_estimate([np.array(s[look][name]) * 100 for s in seeds])
            cells.append(f"{estimate.mean:.2f} [{estimate.interval[0]:.2f}, {estimate.interval[1]:.2f}]")
        difference = seed_difference([np.array(s[look]["visual DR"]) * 100 for s in seeds],
                                     [np.array(s[look]["nominal look"]) * 100 for s in seeds])
        cells.append(f"{difference.mean:+.2f} [{difference.interval[0]:+.2f}, {difference.interval[1]:+.2f}]"
                     + (" (significant)" if difference.significant else ""))
        lines.append(f"| {look} | " + " | ".join(cells) + " |")
    if results["failed"]:
        lines += ["", "Failed: " + ", ".join(sorted(results["failed"]))]
    return "\n".join(lines) + "\n"
