# Copyright 2026 vla_nodes developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""vla_nodes: an ament_python package that also installs with pip for ROS-free use."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'vla_nodes'

# One console script per node executable (ros2 run / launch finds them in lib/vla_nodes).
NODES = ['camera_node', 'depth_node', 'pose_node', 'policy_node', 'arm_driver_node',
         'teleop_recorder_node', 'sim_node', 'robot_state_node', 'trajectory_relay_node']
CLIS = {
    'vla-launch': 'vla_nodes.ros.launch:main',
    'vla-demo': 'vla_nodes.orchestration.demo:main',
    'vla-bag-summary': 'vla_nodes.record.bag_read:main',
    'vla-record': 'vla_nodes.orchestration.record:main',
    'vla-calibrate': 'vla_nodes.perception.calibrate:main',
    'vla-export': 'vla_nodes.record.export:main',
    'vla-snapshots': 'vla_nodes.record.snapshots:main',
    'vla-depth-tokenizer': 'vla_nodes.train.depth_tokenizer:main',
    'vla-train': 'vla_nodes.train.train:main',
    'vla-eval': 'vla_nodes.orchestration.evaluate:main',
    'vla-main': 'vla_nodes.orchestration.pipeline:main',
}


def data_files():
    files = [
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
    ]
    for folder in ('launch', 'config', 'msg', 'description'):
        for path in sorted(glob(f'{folder}/**/*', recursive=True)):
            if os.path.isfile(path):
                files.append((f'share/{PACKAGE}/{os.path.dirname(path)}', [path]))
    return files


HW = ['piper_sdk==0.6.2', 'python-can[multicast]==4.6.1']
# vla-export: parquet files and videos of LeRobot v3 (H.264 colour; depth as LeRobot's 12-bit
# HEVC through the wheel's libx265, or FFV1). av>=15 as LeRobot asks: gray12le frames to numpy.
DATA = ['pyarrow>=14', 'av>=15']
# VLA_ROS_BACKEND=zenoh: nodes across processes and machines, rmw_zenoh-compatible (xxhash: GIDs).
ZENOH = ['eclipse-zenoh==1.10.2', 'xxhash>=3.4']
setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=data_files(),
    python_requires='>=3.10',
    install_requires=[
        'setuptools',
        'numpy>=1.26,<3',    # py3.10 tops out at 2.2; Humble's system cv_bridge wants <2
        'rosbags==0.11.9',   # message definitions, CDR, type hashes, rosbag2 I/O
        'pyyaml>=6',
        'tqdm>=4.60',
        'mcap>=1.1',         # vla-record --repair reads unfinished MCAP files
    ],
    extras_require={
        # torch is not pinned here so a robot keeps its CUDA build; CI installs torch==2.13.0
        # (CPU) first, which satisfies this range without pulling CUDA packages.
        # matplotlib: vla-train's loss plot.
        'ml': ['torch>=2.6', 'transformers>=5.20,<5.24', 'safetensors>=0.4', 'pillow>=10',
               'matplotlib>=3.7'],
        'hw': HW + ['pyrealsense2>=2.55'],
        'sim': HW + ['mujoco>=3.14,<5'],
        'test': ['pytest>=7', 'pytest-timeout', 'mcap>=1.1', 'mcap-ros2-support>=0.5',
                 'flake8>=6', 'flake8-import-order', 'flake8-quotes',
                 'matplotlib>=3.7', 'xacro>=2.0'] + DATA + ZENOH
        # test_zenoh.py's interop test: an independent rmw_zenoh client.
        + ['zenoh-ros2-sdk==0.1.8'],
        'data': DATA,
        'zenoh': ZENOH,
    },
    zip_safe=True,
    maintainer='vla_nodes developers',
    maintainer_email='dev@vla-nodes.org',
    description='Depth-aware VLA policies on Piper arms with RealSense cameras (ROS 2).',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts':
            [f'{n} = {PACKAGE}.nodes.{n}:main' for n in NODES]
            + [f'{name} = {target}' for name, target in CLIS.items()],
    },
)
