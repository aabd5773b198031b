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

"""CameraCapture: a camera's frames read on a thread, with recovery when they stop.

Where it fits: `nodes/camera_node.py` starts the camera, then hands it to `CameraCapture`,
which calls `on_frame(frame)` for every frame (the node publishes it) and `on_status(level,
message, **values)` whenever the health changes (the node's /diagnostics; levels 'ok' | 'warn'
| 'error'). Frames are read here, never on the executor.

Recovery: when frames stop, it logs, reports and restarts the pipeline (after a USB hardware
reset of a live camera if asked), up to MAX_RESTARTS times in a row. A recording that ends is a
camera whose frames stopped: it takes the same path, which replays it from its start, unless
`restart_at_end` is off. No ROS: log lines go to `log` (a logging.Logger or an rclpy logger).
"""

import collections
import logging
import threading
import time

from vla_nodes.camera.realsense import CameraError

# Consecutive pipeline restarts without a frame before giving up (USB re-enumeration usually
# succeeds within one or two; more means a cable, power or firmware problem).
MAX_RESTARTS = 5


class FrameRate:
    """Frames per second over the last second."""

    def __init__(self):
        """Start with no frame."""
        self._times = collections.deque()  # monotonic s of the last second's frames

    def add(self, now_s: float) -> float:
        """Count a frame at `now_s` (monotonic s); the rate (Hz) over the last second."""
        self._times.append(now_s)
        while now_s - self._times[0] > 1.0:
            self._times.popleft()
        return (len(self._times) - 1) / max(now_s - self._times[0], 1e-9)


class CameraCapture:
    """Reads a started `RealSenseCamera` on a thread until `stop()`; restarts it on silence."""

    def __init__(self, camera, on_frame, on_status, log=None, restart_at_end: bool = True,
                 hardware_reset: bool = False):
        """Prepare (not start) the capture thread.

        Args:
            camera: a started `RealSenseCamera` (read, stop, start, hardware_reset, finished).
            on_frame: called with each frame, on the capture thread.
            on_status: called with (level, message, **values) when the health changes.
            log: where log lines go; default this module's logger.
            restart_at_end: replay a finished recording from its start (else stop there).
            hardware_reset: power-cycle a live camera (USB) before restarting it.
        """
        self.camera = camera
        self.frames = self.restarts = self.resets = 0
        self._on_frame, self._on_status = on_frame, on_status
        self._log = log or logging.getLogger(__name__)
        self._restart_at_end, self._hardware_reset = restart_at_end, hardware_reset
        self._rate = FrameRate()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='camera_capture', daemon=True)

    def start(self) -> None:
        """Start reading frames."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and wait (bounded) for the thread, which stops the camera."""
        self._stop.set()
        self._thread.join(timeout=self.camera.config.frame_timeout_s + 2.0)

    def _loop(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                frame = self.camera.read()
                if frame is not None:
                    self._frame(frame)
                    failures = 0
                    continue
                if self._stop.is_set():
                    break
                if self.camera.finished:
                    if not self._restart_at_end:
                        self._finished()
                        break
                    self._restart('warn', 'recording ended')
                elif failures >= MAX_RESTARTS:
                    self._give_up()
                    break
                else:
                    failures += 1
                    timeout = self.camera.config.frame_timeout_s
                    self._restart('error', f'no frames for {timeout:.1f} s',
                                  f' ({failures}/{MAX_RESTARTS})')
        finally:
            self.camera.stop()

    def _frame(self, frame) -> None:
        self._on_frame(frame)
        self.frames += 1
        rate = self._rate.add(time.monotonic())
        self._on_status('ok', f'streaming at {rate:.1f} Hz', frame_rate_hz=rate,
                        frames=self.frames, restarts=self.restarts)

    def _finished(self) -> None:
        self._log.info(f'recording {self.camera.config.playback_file} finished after '
                       f'{self.frames} frames')
        self._on_status('warn', 'recording finished', frame_rate_hz=0.0)

    def _restart(self, level: str, reason: str, attempt: str = '') -> None:
        """The recovery path: report, stop, (reset a live camera,) settle, start again."""
        log = self._log.error if level == 'error' else self._log.warning
        log(f'{reason}: restarting the camera{attempt}')
        self._on_status(level, reason, frame_rate_hz=0.0)
        self.camera.stop()
        if self._hardware_reset and not self.camera.config.playback_file:
            self._log.warning('hardware reset of the camera (USB power cycle)')
            if self.camera.hardware_reset():
                self.resets += 1
            else:
                self._log.error('hardware reset failed: the camera did not come back')
        if self._stop.wait(self.camera.config.frame_timeout_s):  # let the device settle
            return
        try:
            self.camera.start()
            self.restarts += 1
            self._on_status(level, reason, restarts=self.restarts, hardware_resets=self.resets)
        except CameraError as err:
            self._log.error(f'restart failed: {err}')

    def _give_up(self) -> None:
        reason = (f'no frames after {MAX_RESTARTS} restarts: check the cable (USB 3), power '
                  'and firmware, then restart the node')
        self._log.error(reason)
        self._on_status('error', reason, frame_rate_hz=0.0)
