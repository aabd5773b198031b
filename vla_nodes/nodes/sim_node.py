"""sim_node: the simulated Piper and its camera, for users without hardware and for CI.

Hosts a MuJoCo world (`sim.world.SimWorld`) and the arm's firmware (`sim.piper_can.PiperFirmware`)
on a python-can bus, so `arm_driver_node` drives it through the real piper_sdk exactly as it drives
a real arm. Publishes what realsense-ros would (colour rgb8, aligned depth 16UC1 millimetres,
camera_info), the camera-to-base transform on `/tf_static`, the task instruction (latched) and the
simulation clock on `/clock`. Its own timers run on wall time: it is the clock the others follow.
"""

import threading
import time

import numpy as np

from vla_nodes import contract, ros
from vla_nodes.arm import kinematics
from vla_nodes.nodes import run
from vla_nodes.nodes.camera_topics import camera_info, CameraPublishers
from vla_nodes.perception.depth import metres_to_mm
from vla_nodes.ros.msgs import geometry_msgs, rosgraph_msgs, std_msgs, tf2_msgs

# MuJoCo reports the far plane where nothing was hit; a real camera reports no depth there.
MAX_VALID_DEPTH_M = 10.0


class SimNode(ros.Node):

    def __init__(self, **kwargs):
        super().__init__('sim_node', **kwargs)
        self.declare_parameter('width', 320)
        self.declare_parameter('height', 240)
        self.declare_parameter('camera_rate_hz', 10.0)
        self.declare_parameter('physics_rate_hz', 100.0)
        self.declare_parameter('seed', 0)
        self.declare_parameter('task', 'pick up the red cube')
        self.declare_parameter('can_interface', 'virtual')
        self.declare_parameter('can_name', 'vla_sim')
        self.declare_parameter('feedback_rate_hz', 200.0)
        p = {n: self.get_parameter(n).value for n in (
            'width', 'height', 'camera_rate_hz', 'physics_rate_hz', 'seed', 'task',
            'can_interface', 'can_name', 'feedback_rate_hz')}
        from vla_nodes.sim.world import SimConfig, SimWorld
        self._world = SimWorld(SimConfig(width=p['width'], height=p['height'], seed=p['seed']))
        self._lock = threading.Lock()  # the firmware thread reads the state while we step
        self._dt = 1.0 / p['physics_rate_hz']
        self._firmware, self._bus = self._start_firmware(p)
        self._camera = CameraPublishers(self)
        self._clock_pub = self.create_publisher(rosgraph_msgs.Clock, contract.CLOCK_TOPIC, 10)
        self._publish_latched(p['task'])
        self.create_timer(self._dt, self._step)
        # An EGL context belongs to one thread: the camera renders on its own thread, which also
        # keeps the executor free while a frame renders.
        self._camera_period = 1.0 / p['camera_rate_hz']
        self._stop = threading.Event()
        self._camera_thread = threading.Thread(target=self._camera_loop, name='sim_camera',
                                               daemon=True)
        self._camera_thread.start()
        self.get_logger().info(
            f"simulated Piper on CAN {p['can_interface']}:{p['can_name']}, camera "
            f"{p['width']}x{p['height']} at {p['camera_rate_hz']} Hz, task: {p['task']!r}")

    def _start_firmware(self, p):
        import can
        from vla_nodes.sim.piper_can import PiperFirmware
        bus = can.Bus(interface=p['can_interface'], channel=p['can_name'],
                      receive_own_messages=False)
        firmware = PiperFirmware(
            bus, self._read_state, rate_hz=p['feedback_rate_hz'],
            fk=lambda q6: kinematics.pose_to_xyz_rpy(kinematics.forward_kinematics(q6)))
        firmware.start()
        return firmware, bus

    def _read_state(self) -> np.ndarray:
        with self._lock:
            return self._world.joint_positions()

    def _publish_latched(self, task: str) -> None:
        instruction = self.create_publisher(std_msgs.String, contract.INSTRUCTION_TOPIC,
                                            ros.qos_profile_latched)
        instruction.publish(std_msgs.String(data=task))
        tf_static = self.create_publisher(tf2_msgs.TFMessage, contract.TF_STATIC_TOPIC,
                                          ros.qos_profile_latched)
        tf_static.publish(tf2_msgs.TFMessage(transforms=[self._camera_transform()]))

    def _camera_transform(self):
        xyz_quat = kinematics.pose_to_xyz_quat(self._world.camera_pose())
        tf = geometry_msgs.TransformStamped(child_frame_id=contract.CAMERA_FRAME)
        tf.header.frame_id = contract.BASE_FRAME
        t, r = tf.transform.translation, tf.transform.rotation
        t.x, t.y, t.z = (float(v) for v in xyz_quat[:3])
        r.x, r.y, r.z, r.w = (float(v) for v in xyz_quat[3:])
        return tf

    def _stamp(self):
        return ros.Time(seconds=self._world.time).to_msg()

    def _step(self) -> None:
        with self._lock:
            self._world.set_targets(self._firmware.targets().positions)
            self._world.step(self._dt)
            stamp = self._stamp()
        self._clock_pub.publish(rosgraph_msgs.Clock(clock=stamp))

    def _camera_loop(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            try:
                self._render()
            except Exception as err:  # keep the camera alive; the log says what went wrong
                self.get_logger().error(f'render failed: {err}', throttle_duration_sec=5.0)
            next_frame += self._camera_period
            self._stop.wait(max(0.0, next_frame - time.monotonic()))
            next_frame = max(next_frame, time.monotonic() - self._camera_period)
        with self._lock:
            self._world.close()  # the GL context must be freed by the thread that made it

    def _render(self) -> None:
        with self._lock:
            rgb, depth_m = self._world.render()
            stamp_ns = int(round(self._world.time * 1e9))
        depth_m = np.where(depth_m < MAX_VALID_DEPTH_M, depth_m, np.nan)
        k, width, height = self._world.intrinsics()
        info = camera_info(k, [0.0] * 5, width, height, 'plumb_bob', stamp_ns,
                           contract.CAMERA_FRAME)
        self._camera.publish(rgb, metres_to_mm(depth_m), stamp_ns, contract.CAMERA_FRAME,
                             info, info)

    def destroy_node(self):
        self._stop.set()
        self._camera_thread.join(timeout=2.0)
        self._firmware.stop()
        self._bus.shutdown()
        super().destroy_node()


def main(args=None):
    run(SimNode, args)
