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

"""How sim_node advances time: `RealTime` (wall-clock timers) or `LockStep` (waits for the graph).

Real time: timers step the physics, check the status and drive the leader arm; the camera
renders on a thread of its own at its rate.

Lock-step (`lockstep: true`, for evaluation and demos; needs the local runtime and the virtual
CAN bus): simulated time advances only when the graph has done what it would have done by then.
One thread steps: render the frame due now, publish `/clock`, run every callback of the
process that is ready (during an episode it runs them itself: `Context.take_over`, the
executors wait) and wait until the CAN readers have drained their frames
(`sim.can_readers.CanReaders`), then one physics period (`Simulation.advance`); the leader arm
and the status check run at their simulated rates. Between episodes (before the first
`~/reset`, and once the status is 'success' or 'failure') time stands still; the firmware keeps
answering on the bus, and a heartbeat re-sends its last feedback. Same seed, same graph: the same
episode, bit for bit.

Both take the node for what goes on the wire: `render()`, `publish_clock(seconds)`,
`publish_status()`, `warn_unread()`. An EGL context belongs to one thread: the thread that
renders (which also keeps the executor free while it renders) frees it when it ends.
"""

import threading
import time

from vla_nodes.sim.simulation import CAN_SETTLE_S, STATUS_CHECK_HZ

# Lock-step: how often the firmware re-sends its feedback while time stands still (wall s).
HEARTBEAT_S = 0.02
# While time runs, a step waits for rendering or inference: re-send only after a longer silence,
# still well under piper_sdk's 0.1 s (each re-send is 8 frames for the SDK to parse again).
RUNNING_HEARTBEAT_S = 0.05


class RealTime:
    """Wall-clock timers for physics, status and leader arm; a camera thread at its rate."""

    def __init__(self, node, sim, camera_rate_hz: float, leader_rate_hz: float):
        self._node, self._sim = node, sim
        node.create_timer(sim.dt, lambda: node.publish_clock(sim.step()))
        node.create_timer(1.0 / STATUS_CHECK_HZ, self._check_status)
        if sim.leader is not None:
            node.create_timer(1.0 / leader_rate_hz, sim.lead)
        self._period = 1.0 / camera_rate_hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._camera_loop, name='sim_camera', daemon=True)
        self._thread.start()

    def start_episode(self) -> None:
        """Nothing to do: time always runs."""

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _check_status(self) -> None:
        self._sim.check_status()
        self._node.publish_status()

    def _camera_loop(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            try:
                self._node.render()
            except Exception as err:  # keep the camera alive; the log says what went wrong
                self._node.get_logger().error(f'render failed: {err}', throttle_duration_sec=5.0)
            next_frame += self._period
            self._stop.wait(max(0.0, next_frame - time.monotonic()))
            next_frame = max(next_frame, time.monotonic() - self._period)
        self._sim.close_renderer()


class LockStep:
    """The stepping thread and the heartbeat thread of a lock-step simulation."""

    def __init__(self, node, sim):
        self._node, self._sim, self._context = node, sim, node.context
        self._running = False  # an episode started by ~/reset has not ended yet
        self._stop = threading.Event()
        threading.Thread(target=self._heartbeat, name='sim_heartbeat', daemon=True).start()
        self._thread = threading.Thread(target=self._loop, name='sim_lockstep', daemon=True)
        self._thread.start()

    def start_episode(self) -> None:
        """Time runs from now until the episode ends."""
        self._running = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _loop(self) -> None:
        beats, stepping = 0, False
        try:
            while not self._stop.is_set():
                if not self._running:  # time stands still; commands (enable) are still answered
                    if stepping:  # the executors run the callbacks again (~/reset among them)
                        self._context.hand_back()
                        stepping = False
                    beats += 1
                    self._sim.stand_still(low_speed=beats % 2 == 0)
                    self._stop.wait(HEARTBEAT_S)
                    continue
                if not stepping:  # this thread runs every callback until the episode ends
                    self._context.take_over()
                    stepping = True
                self._wait_for_graph()
                frame_due, seconds = self._sim.now()
                if frame_due:
                    self._node.render()
                self._node.publish_clock(seconds)
                self._wait_for_graph()
                if self._sim.advance():  # the status was checked
                    self._node.publish_status()
                    if self._sim.episode.status != 'running':
                        self._running = False  # until the next ~/reset
        except Exception as err:  # say why time stopped, rather than hang silently
            self._node.get_logger().fatal(f'lock-step simulation stopped: {err!r}')
            raise
        finally:
            if stepping:
                self._context.hand_back()
            self._sim.close_renderer()

    def _heartbeat(self) -> None:
        """Re-send the last feedback while time stands still or a step takes long.

        The same frames, so the driver sees a live, unchanged arm (piper_sdk reports 0 Hz after
        0.1 s of silence, and the driver latches a CAN fault after 0.25 s).
        """
        while not self._stop.wait(HEARTBEAT_S / 2):
            self._sim.resend_after(RUNNING_HEARTBEAT_S if self._running else HEARTBEAT_S)

    def _wait_for_graph(self) -> None:
        """Run every ready callback here until none is left and the CAN readers took their frames.

        This thread took the callbacks over (`Context.take_over`): no executor thread to wake
        and to be woken by at each step, and the callbacks run in an order that depends only on
        what was published.
        """
        readers, context = self._sim.readers, self._context
        settling = None
        while not self._stop.is_set():
            context.run_ready()
            # Asleep until a reader goes back to waiting (or 2 ms: a reader may take frames
            # without ever waiting, as a test's polling listener).
            if readers is None or readers.wait(0.002):
                return
            settling = settling or time.monotonic()
            if time.monotonic() - settling > CAN_SETTLE_S:
                readers.give_up()
                self._node.warn_unread()
                return
