"""ament_python package of the sim2real ROS 2 nodes, their launch files and the stack runner."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sim2real_ros"

# Node executables (ros2 run sim2real_ros NAME).
NODES = {
    "sim_bridge": "sim2real_ros.sim_bridge:main",
    "transition_logger": "sim2real_ros.transition_logger:main",
    "odr_fitter": "sim2real_ros.odr_fitter:main",
    "policy_server": "sim2real_ros.policy_server:main",
    "exploration_dispatcher": "sim2real_ros.exploration_dispatcher:main",
    "command_supervisor": "sim2real_ros.command_supervisor:main",
    "franka_proxy": "sim2real_ros.franka_proxy:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
        (f"share/{PACKAGE}/config/stacks", sorted(glob("config/stacks/*.yaml"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="sim2real developers",
    maintainer_email="dev@sim2real.invalid",
    description="ROS 2 nodes of the sim2real stack.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in NODES.items()],
    },
)
