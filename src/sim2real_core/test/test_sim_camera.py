"""The workspace camera: offscreen images with an appearance, the proxies' hidden looks, and the puck locator."""
import numpy as np
import pytest

from sim2real_core.config import ConfigError
from sim2real_core.sim.camera import WorkspaceCamera
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import load_parameter_space
from sim2real_core.sim.reality import load_reality, reality_file
from sim2real_core.sim.simulator import Simulator
from sim2real_core.vision import PUCK_BOX, position_errors, render_puck_images, train_locator


@pytest.fixture(scope="module")
def space():
    return load_parameter_space("fr3_appearance")


def test_the_camera_renders_the_workspace_and_the_appearance_changes_only_the_image(space):
    sim = Simulator("fr3_push")
    camera = WorkspaceCamera(sim.model, 64, 48, space=space, seed=0)
    try:
        nominal = camera.render(sim.data)
        assert nominal.shape == (48, 64, 3) and nominal.dtype == np.uint8 and nominal.std() > 5
        look = space.nominal.copy()
        look[space.index("table_green")] = 0.9
        look[space.index("table_red")] = 0.1
        camera.set_appearance(look)
        green = camera.render(sim.data)
        assert green[..., 1].mean() > nominal[..., 1].mean() + 30 and green[..., 0].mean() < nominal[..., 0].mean()
        look[space.index("image_noise_std")] = 0.04
        camera.set_appearance(look)
        noisy = camera.render(sim.data).astype(float)
        assert np.std(noisy - green) == pytest.approx(0.04 * 255, rel=0.15)
        wide = space.nominal.copy()
        wide[space.index("camera_fovy")] = 50.0
        focal = camera.intrinsics()[1, 1]
        camera.set_appearance(wide)
        assert camera.intrinsics()[1, 1] < focal
        assert sim.model.geom_rgba[sim.model.geom("table").id, 1] == pytest.approx(0.45)  # the physics' model
    finally:
        camera.close()
    with pytest.raises(ConfigError, match="no camera named 'ceiling'"):
        WorkspaceCamera(sim.model, camera="ceiling")


def test_each_proxy_has_its_own_hidden_look_and_bad_looks_are_refused(space, tmp_path):
    looks = {name: load_reality(name).appearance for name in ("fr3_default", "fr3_harsh", "fr3_mild")}
    assert all(look is not None and look.shape == (len(space),) for look in looks.values())
    assert not np.allclose(looks["fr3_default"], space.nominal) and not np.allclose(looks["fr3_harsh"],
                                                                                    looks["fr3_default"])
    text = reality_file("fr3_mild").read_text().replace("table_red: 0.5", "table_red: 1.5")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match="appearance.truth.*table_red"):
        load_reality(tmp_path / "bad.yaml")


def test_a_locator_trained_on_rendered_images_finds_the_puck_in_new_ones(space):
    train = render_puck_images(300, None, space, seed=0)
    held_out = render_puck_images(80, None, space, seed=1)
    assert np.all((train.positions >= PUCK_BOX[0]) & (train.positions <= PUCK_BOX[1]))
    locator = train_locator(train, epochs=25, seed=0)
    guess = np.linalg.norm(held_out.positions - np.mean(PUCK_BOX, axis=0), axis=1).mean()  # the box centre
    assert position_errors(locator, held_out).mean() < 0.4 * guess
    box = Distribution.uniform(space)
    varied = render_puck_images(4, lambda rng: box.sample(rng, 1)[0], space, seed=2)
    assert len({float(image.mean()) for image in varied.images}) == 4
