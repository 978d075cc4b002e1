"""ament_python package of the ROS-free sim2real core library."""
import os

from setuptools import find_packages, setup

PACKAGE = "sim2real_core"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO_CONFIG = os.path.relpath(os.path.join(HERE, "..", "..", "config"), HERE)


def config_data_files():
    """Install the workspace's config/ tree under share/sim2real_core/config."""
    entries = []
    for folder, _, files in os.walk(os.path.join(HERE, REPO_CONFIG)):
        if files:
            rel = os.path.relpath(folder, os.path.join(HERE, REPO_CONFIG))
            target = os.path.normpath(os.path.join("share", PACKAGE, "config", rel))
            entries.append((target, [os.path.relpath(os.path.join(folder, f), HERE) for f in sorted(files)]))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["models/*.xml", "models/*/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ]
    + config_data_files(),
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="sim2real developers",
    maintainer_email="dev@sim2real.invalid",
    description="Sim-to-real core library (no ROS imports).",
    license="Apache-2.0",
)
