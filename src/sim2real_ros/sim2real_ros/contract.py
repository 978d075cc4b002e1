"""The topic and service contract shared with franka_ros2 (see DESIGN.md); every name is remappable.

The arm's topics are relative, so a node started in a namespace (`--ros-args -r __ns:=/left`, or a stack's
`namespace`) uses `/left/franka/joint_states` as franka_ros2 does under its launch namespace.
"""
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

JOINT_STATES = "franka/joint_states"
EFFORT_COMMANDS = "effort_controller/commands"
# Commanders in a supervised stack publish here; the command_supervisor relays to EFFORT_COMMANDS.
SUPERVISED_COMMANDS = "sim2real/commands"
CLOCK = "/clock"
DIAGNOSTICS = "/diagnostics"
PUCK_POSE = "/puck/pose"  # geometry_msgs/PoseStamped, world frame (push task; sim bridge)
CAMERA_IMAGE = "/camera/image_raw"  # sensor_msgs/Image rgb8, the fixed workspace camera (sim bridge, camera_rate > 0)
CAMERA_INFO = "/camera/camera_info"  # sensor_msgs/CameraInfo, its pinhole intrinsics, one per image
EPISODES = "/sim2real/episode"  # std_msgs/String JSON events: {"event": "start"|"end", "episode": n, ...}

RESET_WORLD = "~/reset_world"  # std_srvs/Trigger
SET_PAUSE = "~/set_pause"  # std_srvs/SetBool
STEP_SIMULATION = "~/step_simulation"  # std_srvs/Trigger
SIM_BRIDGE_NAME = "sim_bridge"

# High-rate state and commands: keep the newest few, reliable so lockstep stepping never loses one.
CONTROL_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
# The joint-state stream's writers and readers: a reliable writer keeps only its history for a
# reader that stalls, so 1000 samples (1 s at franka_ros2's 1 kHz) survive a stall of the recorder, which misses
# no state of a lockstep simulation stepping at several kHz (README: why some settings are what they are).
STATE_STREAM_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
# Readers that command from the stream (policy server, exploration dispatcher): a starved reader that queued
# the writers' 1000 samples would act a full second behind a 1 kHz stream, on states the watchdog refuses as
# stale; 50 samples bound the backlog to 50 ms at 1 kHz and still hold half a second of a 100 Hz stream.
COMMANDER_STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
# Episode boundaries and diagnostics: low rate, nothing may be lost.
EVENT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
