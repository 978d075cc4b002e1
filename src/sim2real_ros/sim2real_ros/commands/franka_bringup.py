"""`sim2real franka-bringup`: the commands that bring a real FR3 up under franka_ros2 for sim2real."""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from sim2real_core.franka_ros2 import bringup_sequence, controller_parameters
from sim2real_core.robot import DEFAULT_ROBOT, arm_joint_names, load_robot

HELP = "print the franka_ros2 bring-up sequence (launch, spawner, collision and load settings, recovery)"
DEFAULT_FILE = "config/franka/sim2real_controllers.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real franka-bringup`."""
    parser.add_argument("--robot", default=DEFAULT_ROBOT,
                        help=f"robot file in config/robots (default {DEFAULT_ROBOT})")
    parser.add_argument("--robot-type", default="", help="franka.launch.py robot_type (fr3, fr3v2; default: fr3)")
    parser.add_argument("--arm-prefix", default="", help="franka.launch.py arm_prefix (e.g. left)")
    parser.add_argument("--namespace", default="", help="franka.launch.py namespace")
    parser.add_argument("--robot-ip", default="<robot-ip>", help="the robot's address")
    parser.add_argument("--controllers-out", type=Path,
                        help="write the spawner file for these joint names here (default: the shipped "
                             f"{DEFAULT_FILE}, which names fr3_joint1..7)")


def run(args: argparse.Namespace) -> int:
    """Print the sequence; write a spawner file when the joint names differ from the shipped one's."""
    spec = load_robot(args.robot)
    names = arm_joint_names(spec, args.arm_prefix, args.robot_type)
    controllers = DEFAULT_FILE
    if args.controllers_out is not None:
        args.controllers_out.parent.mkdir(parents=True, exist_ok=True)
        args.controllers_out.write_text(yaml.safe_dump(controller_parameters(names), sort_keys=False))
        controllers = str(args.controllers_out)
    elif tuple(names) != spec.joint_names:
        raise ValueError(f"joints {names[0]}.. differ from the shipped {DEFAULT_FILE}: pass --controllers-out FILE")
    print(bringup_sequence(names, args.robot_type or names[0].rsplit("_joint", 1)[0].split("_")[-1],
                           args.arm_prefix, args.namespace, args.robot_ip, controllers), end="")
    return 0
