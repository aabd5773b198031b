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

"""teleop_recorder_node: records episodes of the contract topics into rosbag2 (MCAP) bags.

One bag per episode, written by a background thread (`record.episode.EpisodeRecorder` over
`record.bag.BagWriter`), so callbacks never wait for the disk, and flushed every second, so a
killed recorder keeps what was flushed (`vla-record --repair`). What is recorded: the leader arm's
commands (`/leader/joint_states`, the action), the follower's feedback (`/joint_states`, the
state), every camera's colour, aligned depth and both camera_infos (`cameras`: the contract's
camera names such as 'scene' and 'wrist', or realsense-ros namespaces such as '/camera/camera'),
metric depth, the end-effector pose, the instruction and `/tf_static`. Messages are
stamped with their receive time on the node's clock (sim time in simulation), as `ros2 bag
record` does. Episodes are driven by `~/start_episode`, `~/stop_episode`, `~/discard_episode` or
start at launch with `autostart`. Every bag's metadata holds the task (the latest instruction, and
`task_name`), the robot, the calibration file's contents and, at the end, an audit of rates and
gaps (also logged and on `/diagnostics`); a stream that stops while recording is an ERROR there.
Images and camera_info are subscribed best-effort, so reliable and best-effort cameras are both
recorded; everything else reliable. With `announce_episode_start` (default; off in simulation,
where sim_node announces its resets) each start publishes `/vla/episode_start` stamped with the
bag's start: a real robot's driver forgets what it followed and holds (docs/interfaces.md).
"""

from pathlib import Path

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK, WARN
from vla_nodes.nodes.parameters import declare_parameters
from vla_nodes.record.episode import format_audit
from vla_nodes.record.session import RecordingSession, saved_status
from vla_nodes.record.topics import (camera_prefix, DEFAULT_CAMERA, DEFAULT_TOPICS, key_values,
                                     record_topics)
from vla_nodes.ros import msgs
from vla_nodes.ros.msgs import ns_to_stamp, std_msgs, std_srvs

LATCHED = (contract.INSTRUCTION_TOPIC, contract.TF_STATIC_TOPIC)
# Camera streams are subscribed BEST_EFFORT: that matches a RELIABLE publisher (realsense-ros'
# default) and a BEST_EFFORT one (its SENSOR_DATA option, most camera drivers), where a RELIABLE
# subscription would silently record nothing. The audit reports what was dropped.
BEST_EFFORT_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CameraInfo')
LEVELS = {'ok': OK, 'warn': WARN, 'error': ERROR}
PARAMETERS = {
    'output_dir': 'vla_episodes',
    'topics': DEFAULT_TOPICS,
    'cameras': [DEFAULT_CAMERA],
    'autostart': False,
    'robot': 'piper',
    'task_name': '',
    'calibration_file': '',         # '' = config/calibration.yaml if any
    'expected_rates': [''],         # 'topic=Hz' entries over NOMINAL_RATES
    'camera_rate_hz': 0.0,          # every camera's streams; 0 = nominal
    'status_topic': '',             # std_msgs/String: episode outcome
    'episode_metadata': [''],       # 'key=value': into the next bags (read at each start)
    'storage': 'mcap',
    'flush_period_s': 1.0,
    'queue_size': 4096,
    'queue_mb': 1024,
    'subscription_depth': 200,
    'gap_factor': 3.0,
    'min_gap_s': 0.1,
    'stall_timeout_s': 1.0,
    # A robot's demo starts when recording starts: announce it, so the driver drops what it
    # followed and holds. In simulation sim_node announces its resets (config/sim.yaml).
    'announce_episode_start': True,
}


class TeleopRecorderNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('teleop_recorder_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        cameras = [camera_prefix(c) for c in p['cameras'] if c]
        topics = record_topics(p['topics'], cameras)
        self._session = RecordingSession.from_parameters(p, topics, cameras, LATCHED)
        self._subs = {t: self._subscribe(t, type_name, p['subscription_depth'])
                      for t, type_name in topics.items()}
        if p['status_topic']:
            self.create_subscription(std_msgs.String, p['status_topic'], self._on_status,
                                     ros.qos_profile_latched)
        self._episode_start_pub = None
        if p['announce_episode_start']:
            self._episode_start_pub = self.create_publisher(
                std_msgs.Header, contract.EPISODE_START_TOPIC, ros.qos_profile_latched)
        self.create_service(std_srvs.Trigger, '~/start_episode', self._on_start)
        self.create_service(std_srvs.Trigger, '~/stop_episode', self._on_stop)
        self.create_service(std_srvs.Trigger, '~/discard_episode', self._on_discard)
        self._diag = Diagnostics(self)  # publishes at 1 Hz what _refresh_status sets
        self.create_timer(0.5, self._refresh_status)
        if p['autostart']:
            # Start on the first tick, once latched topics (the instruction) have arrived.
            self._autostart = self.create_timer(0.2, self._start_once)
        self.get_logger().info(f'recording {len(topics)} topics into '
                               f'{self._session.recorder.config.output_dir}')

    def _subscribe(self, topic: str, type_name: str, depth: int):
        qos = ros.qos_profile_latched if topic in LATCHED else depth
        if type_name in BEST_EFFORT_TYPES:
            qos = ros.QoSProfile(depth=depth, reliability=ros.ReliabilityPolicy.BEST_EFFORT)
        return self.create_subscription(msgs.get_message(type_name), topic,
                                        lambda msg, t=topic: self._on_message(t, msg), qos)

    # --- callbacks: forward to the session ------------------------------------------------------
    def _on_message(self, topic: str, msg) -> None:
        error = self._session.on_message(topic, msg, self._now())
        if error:  # e.g. a full disk: this episode ends, the earlier ones are intact
            self.get_logger().error(error)
            self._diag.set(ERROR, error)
            self._diag.publish()

    def _on_status(self, msg) -> None:
        self._session.outcome = msg.data

    def _start_once(self) -> None:
        self.destroy_timer(self._autostart)
        self._answer(std_srvs.Trigger.Response(), self.start_episode)

    def _on_start(self, request, response):
        return self._answer(response, self.start_episode)

    def _on_stop(self, request, response):
        return self._answer(response, self.stop_episode)

    def _on_discard(self, request, response):
        return self._answer(response, self.discard_episode)

    def _answer(self, response, action):
        try:
            response.message = str(action())
            response.success = True
        except Exception as err:  # the service reports failures; the node keeps running
            response.success, response.message = False, str(err)
            self.get_logger().warning(str(err))
        return response

    # --- episodes -------------------------------------------------------------------------------
    def start_episode(self) -> Path:
        extra = key_values(self.get_parameter('episode_metadata').value, 'episode_metadata',
                           'operator=alice')
        now_ns = self._now()
        path = self._session.start(now_ns, self._lost(), extra)
        if self._episode_start_pub is not None:
            self._episode_start_pub.publish(std_msgs.Header(stamp=ns_to_stamp(now_ns),
                                                            frame_id=path.name))
        self.get_logger().info(f'recording episode into {path}')
        self._diag.set(OK, f'recording {path.name}')
        return path

    def stop_episode(self) -> Path:
        episode = self._session.stop(self._now(), self._lost())
        level, message, values = saved_status(episode)
        log = self.get_logger().info if level == 'ok' else self.get_logger().warning
        log(f'episode saved: {episode.path} ({episode.messages} messages)\n'
            + format_audit(episode.audit))
        self._diag.set(LEVELS[level], message)
        self._diag.values.update(values)
        self._diag.publish()
        return episode.path

    def discard_episode(self) -> Path:
        path = self._session.discard()
        self.get_logger().info(f'episode discarded: {path}')
        self._diag.set(OK, f'discarded {path.name}')
        return path

    def _refresh_status(self) -> None:
        """Live rates and stopped streams into the diagnostics values (published at 1 Hz)."""
        level, message, values = self._session.live_status(self._now(), self._diag.values)
        self._diag.values = values
        if level is not None:
            self._diag.set(LEVELS[level], message)

    def _lost(self) -> dict:
        """Messages each subscription lost to queue overflow (local backend; rclpy: none)."""
        return {t: getattr(sub, 'dropped', 0) for t, sub in self._subs.items()}

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def destroy_node(self):
        episode = self._session.recorder.close(self._now())
        if episode is not None:
            self.get_logger().info(f'episode saved at shutdown: {episode.path}')
        super().destroy_node()


def main(args=None):
    run(TeleopRecorderNode, args)
