"""Bringing the stack up against franka_ros2 on a real FR3: the spawner file, the robot settings, the sequence.

Facts from franka_ros2 jazzy v3.4.0 (franka_bringup/launch/franka.launch.py, franka_bringup/config/
controllers.yaml, franka_robot_state_broadcaster, franka_msgs) and ros2_control jazzy (controller_manager
spawner: a controller's type is read from `<controller>.ros__parameters.type`, under `/**` for any namespace).
franka.launch.py loads its own controllers.yaml (update_rate 1000, thread_priority 98, overruns.manage false,
joint_state_broadcaster, franka_robot_state_broadcaster); sim2real's effort controller is added beside it
with the spawner's `--param-file`, so none of those settings is lost.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Sequence

import yaml
from annotated_types import Len
from pydantic import Field, FiniteFloat, model_validator

from .config import OptionModel, config_path, load_config

EFFORT_CONTROLLER = "effort_controller"
EFFORT_CONTROLLER_TYPE = "effort_controllers/JointGroupEffortController"


def controller_parameters(joint_names: Sequence[str]) -> dict[str, Any]:
    """The spawner parameter file for the effort controller over these joints (namespace-agnostic, `/**`)."""
    return {"/**": {EFFORT_CONTROLLER: {"ros__parameters": {"type": EFFORT_CONTROLLER_TYPE,
                                                             "joints": list(joint_names)}}}}


Torques = Annotated[tuple[FiniteFloat, ...], Len(7, 7)]  # [Nm] per joint
Wrench = Annotated[tuple[FiniteFloat, ...], Len(6, 6)]  # [N, N, N, Nm, Nm, Nm] at the end effector


class CollisionBehavior(OptionModel):
    """Collision thresholds (franka_msgs/srv/SetFullCollisionBehavior): contact above `lower` is reported,
    above `upper` it stops the arm in a reflex."""

    lower_torque_thresholds: Torques
    upper_torque_thresholds: Torques
    lower_force_thresholds: Wrench
    upper_force_thresholds: Wrench

    @model_validator(mode="after")
    def _ordered(self):
        for what in ("torque", "force"):
            lower, upper = getattr(self, f"lower_{what}_thresholds"), getattr(self, f"upper_{what}_thresholds")
            if any(lo > hi for lo, hi in zip(lower, upper)):
                raise ValueError(f"{what} thresholds need lower <= upper, got {list(lower)} and {list(upper)}")
        return self


class Load(OptionModel):
    """The mounted load beyond the Franka Hand (franka_msgs/srv/SetLoad)."""

    mass: FiniteFloat = Field(ge=0.0)  # [kg]
    center_of_mass: Annotated[tuple[FiniteFloat, ...], Len(3, 3)]  # [m] in the flange frame
    load_inertia: Annotated[tuple[FiniteFloat, ...], Len(9, 9)]  # [kg*m^2] column-major 3x3


class RobotSettings(OptionModel):
    """config/franka/robot_settings.yaml: what sim2real sets on a real FR3 before commanding it."""

    collision_behavior: CollisionBehavior
    load: Load


def load_robot_settings(path: str | Path | None = None) -> RobotSettings:
    """config/franka/robot_settings.yaml (collision thresholds and load), checked."""
    return load_config(Path(path) if path is not None else config_path("franka", "robot_settings.yaml"),
                       RobotSettings)


def bringup_sequence(joint_names: Sequence[str], robot_type: str, arm_prefix: str = "", namespace: str = "",
                     robot_ip: str = "<robot-ip>", controllers_file: str = "config/franka/sim2real_controllers.yaml",
                     settings: RobotSettings | None = None) -> str:
    """The commands, in order, that bring a real FR3 up under franka_ros2 for sim2real, as shell text."""
    settings = settings or load_robot_settings()
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    base = f"{ns}/{arm_prefix}" if arm_prefix else ns  # franka_ros2 puts its servers under the arm prefix
    collision = settings.collision_behavior.model_dump(mode="json")
    full = {f"{bound}_{what}_thresholds_{mode}": [float(v) for v in collision[f"{bound}_{what}_thresholds"]]
            for bound in ("lower", "upper") for what in ("torque", "force") for mode in ("acceleration", "nominal")}
    load = settings.load.model_dump(mode="json")
    flow = lambda value: yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()  # noqa: E731
    launch_args = " ".join(f"{k}:={v}" for k, v in (("robot_type", robot_type), ("arm_prefix", arm_prefix),
                                                    ("namespace", namespace.strip("/")), ("robot_ip", robot_ip))
                           if v)
    up_args = (f" --namespace {ns}" if ns else "") + (
        f" --set policy_server.arm_prefix:={arm_prefix}" if arm_prefix else "")
    return "\n".join([
        "# 1. franka_ros2 (jazzy) and the effort controller, which franka_ros2 does not depend on",
        "sudo apt install ros-jazzy-effort-controllers   # beside a franka_ros2 workspace built per its README",
        "# 2. the robot: franka_ros2's own controllers.yaml (1 kHz, thread priority 98, state broadcasters)",
        f"ros2 launch franka_bringup franka.launch.py {launch_args}",
        "# 3. sim2real's effort controller beside them (its type and joints from the spawner file)",
        f"ros2 run controller_manager spawner {EFFORT_CONTROLLER} -c {ns}/controller_manager "
        f"--param-file {controllers_file}",
        "# 4. collision thresholds and the mounted load (config/franka/robot_settings.yaml; only while idle)",
        f"ros2 service call {base}/service_server/set_full_collision_behavior franka_msgs/srv/SetFullCollisionBehavior "
        f"\"{flow(full)}\"",
        f"ros2 service call {base}/service_server/set_load franka_msgs/srv/SetLoad \"{flow(load)}\"",
        "# 5. the stack (policy server behind the command supervisor, logger)",
        f"sim2real up real{up_args} --set policy_server.policy_path:=out/policy",
        "# after a reflex (states stop; /diagnostics and the robot's log say why): recover, then re-activate",
        f"ros2 action send_goal {base}/action_server/error_recovery franka_msgs/action/ErrorRecovery {{}}",
        f"ros2 control set_hardware_component_state -c {ns}/controller_manager FrankaHardwareInterface active",
        f"ros2 control switch_controllers -c {ns}/controller_manager --activate joint_state_broadcaster "
        f"franka_robot_state_broadcaster {EFFORT_CONTROLLER}",
        f"ros2 service call {ns}/command_supervisor/reset std_srvs/srv/Trigger   # if it latched zero torque",
    ]) + "\n"
