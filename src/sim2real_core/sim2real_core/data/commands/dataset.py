"""`sim2real dataset BAG --out FILE`: convert a recorded bag into a transition dataset (.npz)."""
from __future__ import annotations

import argparse

from sim2real_core.data.convert import COMMANDS_TOPIC, EPISODES_TOPIC, PUCK_TOPIC, bag_to_dataset
from sim2real_core.data.dataset import save_dataset
from sim2real_core.data.summary import format_summary, summarize_dataset
from sim2real_core.robot import DEFAULT_ROBOT

HELP = "convert a rosbag2 recording (MCAP or sqlite3) into a D4RL-style transition dataset (.npz)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real dataset`."""
    parser.add_argument("bag", help="rosbag2 directory")
    parser.add_argument("--out", required=True, help="output .npz file")
    parser.add_argument("--control-period", type=float,
                        help="seconds between s and s' (default: control_period in config/robots/ROBOT.yaml)")
    parser.add_argument("--robot", default=DEFAULT_ROBOT, help="robot in config/robots (joint names, defaults)")
    parser.add_argument("--joint-states-topic",
                        help="JointState topic (default: /franka/joint_states, else /joint_states)")
    parser.add_argument("--commands-topic", default=COMMANDS_TOPIC, help=f"effort commands (default {COMMANDS_TOPIC})")
    parser.add_argument("--episodes-topic", default=EPISODES_TOPIC, help=f"episode events (default {EPISODES_TOPIC})")
    parser.add_argument("--episode-source",
                        help="use episode events of this node only (default: the data collector's over sim_bridge's)")
    parser.add_argument("--max-gap", type=float, help="longest state gap [s] bridged by interpolation")
    parser.add_argument("--puck-topic", help=f"PoseStamped puck poses: states become joint_state_puck_v1 (default: "
                        f"{PUCK_TOPIC} when the bag has poses there; '' ignores the puck)")
    parser.add_argument("--image-topic", help="rgb8 camera images (e.g. /camera/image_raw): each transition carries "
                                              "the newest image at or before its state (default: none)")
    parser.add_argument("--max-image-age", type=float, default=0.5,
                        help="oldest image a transition takes [s]; without one it is dropped (default 0.5)")


def run(args: argparse.Namespace) -> int:
    """Convert, save, and print what the dataset holds."""
    dataset = bag_to_dataset(args.bag, args.control_period, robot=args.robot,
                             joint_states_topic=args.joint_states_topic, commands_topic=args.commands_topic,
                             episodes_topic=args.episodes_topic, episode_source=args.episode_source,
                             max_gap=args.max_gap, puck_topic=args.puck_topic, image_topic=args.image_topic,
                             max_image_age=args.max_image_age)
    path = save_dataset(args.out, dataset)
    print(format_summary(summarize_dataset(path)))
    return 0
