"""teleop_recorder_node: records episodes of the contract topics into rosbag2 (MCAP) bags.

One bag per episode, written by a background thread (`record.bag.BagWriter`), so callbacks never
wait for the disk. Messages are stamped with their receive time on the node's clock (sim time in
simulation), as `ros2 bag record` does. Episodes are driven by `~/start_episode`,
`~/stop_episode` and `~/discard_episode`, or start at launch with `autostart`. The task text
(the latest instruction) and the robot name go into the bag's metadata.
"""

from datetime import datetime
from pathlib import Path
import shutil

from vla_nodes import contract, ros
from vla_nodes.nodes import run
from vla_nodes.nodes.diagnostics import Diagnostics, ERROR, OK
from vla_nodes.record.bag import BagWriter
from vla_nodes.ros import msgs
from vla_nodes.ros.msgs import std_srvs

# Topics recorded when the `topics` parameter is left empty: the whole contract but the clock.
DEFAULT_TOPICS = [t for t in contract.TOPIC_TYPES if t != contract.CLOCK_TOPIC]
LATCHED = {contract.INSTRUCTION_TOPIC, contract.TF_STATIC_TOPIC}


class TeleopRecorderNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('teleop_recorder_node', **kwargs)
        self.declare_parameter('output_dir', 'vla_episodes')
        self.declare_parameter('topics', DEFAULT_TOPICS)
        self.declare_parameter('autostart', False)
        self.declare_parameter('robot', 'piper')
        self._output_dir = Path(self.get_parameter('output_dir').value).expanduser()
        self._robot = self.get_parameter('robot').value
        self._writer = None
        self._episode_path = None
        self._episodes = 0
        self._instruction = ''
        self._received = 0
        self._latched = {}  # last message of each latched topic: every episode starts with it
        for topic in self.get_parameter('topics').value:
            self._subscribe(topic)
        self.create_service(std_srvs.Trigger, '~/start_episode', self._on_start)
        self.create_service(std_srvs.Trigger, '~/stop_episode', self._on_stop)
        self.create_service(std_srvs.Trigger, '~/discard_episode', self._on_discard)
        self._diag = Diagnostics(self)
        if self.get_parameter('autostart').value:
            # Start on the first tick, once latched topics (the instruction) have arrived.
            self._autostart = self.create_timer(0.2, self._start_once)

    def _start_once(self) -> None:
        self.destroy_timer(self._autostart)
        self.start_episode()

    def _subscribe(self, topic: str) -> None:
        type_name = contract.TOPIC_TYPES.get(topic)
        if type_name is None:
            raise ValueError(f'no message type known for topic {topic!r}: record only the '
                             f'contract topics ({", ".join(contract.TOPIC_TYPES)})')
        qos = ros.qos_profile_latched if topic in LATCHED else 100
        self.create_subscription(msgs.get_message(type_name), topic,
                                 lambda msg, t=topic: self._on_message(t, msg), qos)

    def _on_message(self, topic: str, msg) -> None:
        if topic == contract.INSTRUCTION_TOPIC:
            self._instruction = msg.data
        if topic in LATCHED:
            self._latched[topic] = msg
        writer = self._writer
        if writer is None:
            return
        try:
            writer.write(topic, msg, self.get_clock().now().nanoseconds)
            self._received += 1
        except Exception as err:  # e.g. a full disk: stop this episode, keep the earlier ones
            self.get_logger().error(f'recording stopped: {err}')
            self._diag.set(ERROR, f'recording stopped: {err}')
            self._writer = None

    # --- episodes -------------------------------------------------------------------------------
    def start_episode(self) -> Path:
        if self._writer is not None:
            raise RuntimeError(f'an episode is already recording into {self._episode_path}')
        stamp = datetime.now().strftime('%Y%m%d_%H%M%S')
        self._episode_path = self._output_dir / f'episode_{self._episodes:04d}_{stamp}'
        self._output_dir.mkdir(parents=True, exist_ok=True)
        self._writer = BagWriter(self._episode_path, metadata={
            'task': self._instruction, 'robot': self._robot})
        self._received = 0
        now = self.get_clock().now().nanoseconds
        for topic, msg in self._latched.items():
            self._writer.write(topic, msg, now)
        self.get_logger().info(f'recording episode {self._episodes} into {self._episode_path}')
        self._diag.set(OK, f'recording {self._episode_path.name}')
        return self._episode_path

    def stop_episode(self) -> Path | None:
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        writer.close()
        self._episodes += 1
        self.get_logger().info(f'episode saved: {self._episode_path} ({self._received} msgs)')
        self._diag.set(OK, f'idle, {self._episodes} episodes saved')
        return self._episode_path

    def _on_start(self, request, response):
        return self._answer(response, self.start_episode)

    def _on_stop(self, request, response):
        return self._answer(response, self.stop_episode)

    def _on_discard(self, request, response):
        def discard():
            path = self.stop_episode()
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
                self._episodes -= 1
            return path
        return self._answer(response, discard)

    @staticmethod
    def _answer(response, action):
        try:
            response.message = str(action())
            response.success = True
        except Exception as err:  # the service reports failures; the node keeps running
            response.success, response.message = False, str(err)
        return response

    def destroy_node(self):
        self.stop_episode()
        super().destroy_node()


def main(args=None):
    run(TeleopRecorderNode, args)
