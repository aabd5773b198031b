"""depth_node: aligned camera depth (16UC1 mm) -> metric depth (32FC1 m, NaN = invalid).

Subscribes the camera's aligned depth and colour camera_info, publishes `/vla/depth/image` with the
input's header (same stamp and optical frame) and the matching camera_info. Frames with a wrong
encoding, a size that disagrees with camera_info, or no camera_info yet are rejected with a
diagnostic; nothing that looks valid is published from them.
"""

import copy

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.perception.depth import DepthRange, mm_to_metres
from vla_nodes.ros import image
from vla_nodes.ros.msgs import sensor_msgs


class DepthNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('depth_node', **kwargs)
        self.declare_parameter('min_depth_m', 0.05)
        self.declare_parameter('max_depth_m', 10.0)
        self._range = DepthRange(self.get_parameter('min_depth_m').value,
                                 self.get_parameter('max_depth_m').value)
        self._info = None
        self._published = self._rejected = 0
        self._pub = self.create_publisher(sensor_msgs.Image, contract.METRIC_DEPTH_TOPIC, 10)
        self._info_pub = self.create_publisher(
            sensor_msgs.CameraInfo, contract.METRIC_DEPTH_TOPIC.rsplit('/', 1)[0]
            + '/camera_info', 10)
        self.create_subscription(sensor_msgs.CameraInfo, contract.COLOR_INFO_TOPIC,
                                 self._on_info, 10)
        self.create_subscription(sensor_msgs.Image, contract.DEPTH_TOPIC, self._on_depth, 10)
        self._diag = Diagnostics(self)

    def _on_info(self, msg) -> None:
        self._info = msg

    def _on_depth(self, msg) -> None:
        if self._info is None:
            return self._reject(WARN, 'no camera_info received yet on '
                                f'{contract.COLOR_INFO_TOPIC}; is the camera running?')
        if msg.encoding != contract.CAMERA_DEPTH_ENCODING:
            return self._reject(ERROR, f'depth encoding {msg.encoding!r}: expected 16UC1 '
                                'millimetres (realsense-ros aligned_depth_to_color)')
        if (msg.width, msg.height) != (self._info.width, self._info.height):
            return self._reject(ERROR, f'depth {msg.width}x{msg.height} does not match '
                                f'camera_info {self._info.width}x{self._info.height}: '
                                'enable depth alignment to colour')
        try:
            metres = mm_to_metres(image.from_msg(msg), self._range)
        except ValueError as err:
            return self._reject(ERROR, str(err))
        out = image.to_msg(metres, contract.METRIC_DEPTH_ENCODING)
        out.header = msg.header
        info = copy.copy(self._info)  # messages are shared in-process: never mutate an input
        info.header = msg.header
        self._pub.publish(out)
        self._info_pub.publish(info)
        self._published += 1
        self._diag.set(OK, 'publishing metric depth', published=self._published,
                       rejected=self._rejected)

    def _reject(self, level, reason: str) -> None:
        self._rejected += 1
        self.get_logger().warning(f'depth frame rejected: {reason}', throttle_duration_sec=2.0)
        self._diag.set(level, reason, published=self._published, rejected=self._rejected)


def main(args=None):
    run(DepthNode, args)
