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

"""The other process of test_zenoh.py and bench_zenoh.py: a node on its own Zenoh session.

`python test/zenoh_peer.py ENDPOINT` connects to ENDPOINT and, as node `/peer`, publishes
`frames()` (a 640x480 rgb8 Image and a JointState) at 20 Hz, publishes the instruction once on a
transient-local topic, serves `/peer/enable` (std_srvs/SetBool), prints `ready` and runs until
stdin closes. `bench` instead of `serve` publishes what bench_zenoh.py measures.
"""

import sys
import threading

import numpy as np

from vla_nodes.ros import image, local, msgs, zenoh_bus
from vla_nodes.ros.qos import qos_profile_latched

INSTRUCTION = 'pick up the red cube'


def frames(seq: int = 0) -> tuple:
    """The deterministic Image and JointState both processes build."""
    rgb = (np.arange(480 * 640 * 3, dtype=np.uint32) * 7 + seq).astype(np.uint8)
    img = image.to_msg(rgb.reshape(480, 640, 3), 'rgb8', stamp_ns=10**9 + seq, frame_id='cam')
    joints = msgs.get_message('sensor_msgs/msg/JointState')(
        name=[f'joint{i}' for i in range(1, 7)] + ['gripper'],
        position=[0.1 * i + seq for i in range(7)], velocity=[0.0] * 7, effort=[])
    joints.header.stamp = msgs.ns_to_stamp(2 * 10**9 + seq)
    return img, joints


def connect(endpoint: str) -> local.Context:
    bus = zenoh_bus.ZenohBus(zenoh_bus.session_config(
        f'connect/endpoints=["{endpoint}"];listen/endpoints=[]'))
    context = local.Context()
    context.init(bus=bus)
    return context


def serve(endpoint: str) -> None:
    context = connect(endpoint)
    node = local.Node('peer', context=context)
    img, joints = frames()
    pub_img = node.create_publisher(type(img), '/camera/camera/color/image_raw', 5)
    pub_js = node.create_publisher(type(joints), '/joint_states', 10)
    String = msgs.get_message('std_msgs/msg/String')
    node.create_publisher(String, '/vla/instruction', qos_profile_latched).publish(
        String(data=INSTRUCTION))

    def enable(request, response):
        response.success, response.message = True, f'enable={request.data}'
        return response
    node.create_service(msgs.get_service('std_srvs/srv/SetBool'), '~/enable', enable)

    def tick():
        pub_img.publish(img)
        pub_js.publish(joints)
    node.create_timer(0.05, tick)
    executor = local.MultiThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    print('ready', flush=True)
    sys.stdin.read()  # until the test closes our stdin
    context.shutdown()


if __name__ == '__main__':
    serve(sys.argv[1])
