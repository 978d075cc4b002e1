"""ament_python package of the sim2real command, the demo pipeline and the studies."""
from setuptools import find_packages, setup

PACKAGE = "sim2real"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        ("bin", ["scripts/sim2real"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="sim2real developers",
    maintainer_email="dev@sim2real.invalid",
    description="The sim2real command, the demo pipeline and the studies.",
    license="Apache-2.0",
)
