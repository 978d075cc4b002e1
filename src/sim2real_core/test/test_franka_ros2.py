"""The franka_ros2 bring-up: the spawner file passes the controller_manager's lookup, the printed sequence."""
import pytest
import yaml

from sim2real_core.config import ConfigError, config_path
from sim2real_core.franka_ros2 import (
    EFFORT_CONTROLLER,
    EFFORT_CONTROLLER_TYPE,
    bringup_sequence,
    controller_parameters,
    load_robot_settings,
)
from sim2real_core.robot import arm_joint_names, load_robot


def spawner_lookup(parameters: dict, controller: str, namespace: str, name: str):
    """The spawner's lookup of a controller parameter in a --param-file, as ros2_control jazzy's
    controller_manager/controller_manager_services.py `get_parameter_from_param_files` does it (keys in its
    order: name, ns/name, /**/name, /**ns/name, each also under a top-level /**, then /** itself)."""
    namespaced = f"/{controller}" if namespace == "/" else f"{namespace}/{controller}"
    found = None
    for key in (controller, namespaced, f"/**/{controller}", f"/**{namespaced}"):
        if key in parameters:
            if key == controller and namespace != "/":
                break  # the spawner logs "Missing namespace ... or wildcard" and finds nothing
            found = parameters[key]
        elif "/**" in parameters and key in parameters["/**"]:
            found = parameters["/**"][key]
        elif "/**" in parameters and "ros__parameters" in parameters["/**"]:
            found = parameters["/**"]
        if found and (not isinstance(found, dict) or "ros__parameters" not in found):
            raise RuntimeError("not a valid ROS parameter file for the controller")
        if found and name in found["ros__parameters"]:
            break
    return found["ros__parameters"].get(name) if found else None


@pytest.mark.parametrize("namespace", ["/", "/left", "/robot/arm"])
def test_the_shipped_spawner_file_gives_the_controller_its_type_in_any_namespace(namespace):
    parameters = yaml.safe_load(config_path("franka", "sim2real_controllers.yaml").read_text())
    assert spawner_lookup(parameters, EFFORT_CONTROLLER, namespace, "type") == EFFORT_CONTROLLER_TYPE
    assert spawner_lookup(parameters, EFFORT_CONTROLLER, namespace, "joints") == list(load_robot("fr3").joint_names)
    assert parameters == controller_parameters(load_robot("fr3").joint_names)  # generated and shipped agree


def test_the_old_layout_under_controller_manager_is_what_the_spawner_cannot_read():
    old = {"controller_manager": {"ros__parameters": {"update_rate": 1000, EFFORT_CONTROLLER: {
        "type": EFFORT_CONTROLLER_TYPE}}}}
    assert spawner_lookup(old, EFFORT_CONTROLLER, "/", "type") is None


def test_the_bringup_sequence_names_a_prefixed_arm_and_every_franka_service_field():
    names = arm_joint_names(load_robot("fr3"), "left")
    text = bringup_sequence(names, "fr3", arm_prefix="left", namespace="/lab")
    assert "franka.launch.py robot_type:=fr3 arm_prefix:=left namespace:=lab" in text
    assert "spawner effort_controller -c /lab/controller_manager --param-file" in text
    assert "/lab/left/service_server/set_full_collision_behavior franka_msgs/srv/SetFullCollisionBehavior" in text
    for bound in ("lower", "upper"):
        for what in ("torque", "force"):
            for mode in ("acceleration", "nominal"):
                assert f"{bound}_{what}_thresholds_{mode}: [" in text
    assert "set_load franka_msgs/srv/SetLoad" in text and "load_inertia: [" in text
    assert "sim2real up real --namespace /lab --set policy_server.arm_prefix:=left" in text
    assert "/lab/left/action_server/error_recovery franka_msgs/action/ErrorRecovery" in text
    assert controller_parameters(names)["/**"][EFFORT_CONTROLLER]["ros__parameters"]["joints"][0] == "left_fr3_joint1"


def test_robot_settings_are_checked(tmp_path):
    settings = load_robot_settings()
    assert len(settings.collision_behavior.upper_torque_thresholds) == 7
    bad = tmp_path / "settings.yaml"
    content = settings.model_dump(mode="json")
    content["collision_behavior"]["lower_force_thresholds"] = [50.0] * 6  # above the upper ones
    bad.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError, match="force thresholds need lower <= upper"):
        load_robot_settings(bad)
    content = settings.model_dump(mode="json")
    content["collision_behavior"]["lower_torque_thresholds"][0] = float("nan")
    bad.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError, match=r"lower_torque_thresholds.0: Input should be a finite number"):
        load_robot_settings(bad)
    content = settings.model_dump(mode="json")
    content["load"].update(mass=-1.0, center_of_mass=[0.0, 0.0])
    content["load"]["inertia"] = [0.0] * 9
    bad.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError, match=r"settings.yaml: load.mass: Input should be greater than or equal to 0 .*"
                                          r"load.center_of_mass: .*at least 3 items.*load.inertia: Extra inputs"):
        load_robot_settings(bad)
