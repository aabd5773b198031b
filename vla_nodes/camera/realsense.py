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

"""RealSenseCamera: colour + depth aligned to colour, from a live D4xx or a `.db3` recording.

Where it fits: the core behind `nodes/camera_node.py` (DESIGN.md section 4). A live camera and a
recording go through the same `rs.pipeline`, `rs.align(rs.stream.color)` and conversion code, so
tests replay synthetic recordings through exactly what runs on the robot.

Units: `rgb` uint8 (H, W, 3); `depth` uint16 millimetres, 0 = invalid, converted from the device's
raw units with its own depth scale (0.001 m on most D4xx, 0.0001 m on a D405: never assumed);
`stamp_ns` host time in nanoseconds; intrinsics in pixels, from the colour stream profile.
`pyrealsense2` is imported here only.
"""

from dataclasses import dataclass
import os
import threading
import time
from typing import Callable

import numpy as np

# Largest depth a 16UC1 millimetre image can hold; farther readings become 0 (invalid).
MAX_DEPTH_MM = 65535
# Slice of one wait for frames (ms): short, so a finished recording is noticed quickly.
WAIT_SLICE_MS = 100
# After rs.device.hardware_reset() the camera leaves the USB bus within about a second and comes
# back within a few (librealsense examples wait up to 10 s); poll for both every 0.2 s.
RESET_GONE_S, RESET_POLL_S = 3.0, 0.2


class CameraError(RuntimeError):
    """The camera cannot start or stream; the message says what to do about it."""


@dataclass(frozen=True)
class RealSenseConfig:
    """What to open and how.

    Attributes:
        serial_number: camera to open ('' = the first one found); a leading '_' is ignored,
            as realsense-ros users write `serial_no:=_8316...` to keep it a string.
        width: colour and depth width (px) of a live camera; a recording keeps its own.
        height: colour and depth height (px) of a live camera; a recording keeps its own.
        fps: frame rate (Hz) of a live camera; a recording keeps its own.
        align_depth: map depth onto the colour image (`rs.align`), so both share pixels and K.
        playback_file: `.db3` recording to replay instead of a live camera ('' = live).
        frame_timeout_s: how long `read()` waits for a frame pair before returning None (s).
        playback_real_time: replay at the recorded pace (like a camera); False reads the
            recording as fast as `read()` is called, losing no frame (tests, offline work).
    """

    serial_number: str = ''
    width: int = 640
    height: int = 480
    fps: int = 30
    align_depth: bool = True
    playback_file: str = ''
    frame_timeout_s: float = 1.0
    playback_real_time: bool = True


@dataclass(frozen=True, eq=False)
class Intrinsics:
    """Pinhole intrinsics of one stream, in ROS CameraInfo terms.

    Attributes:
        width: image width (px).
        height: image height (px).
        k: (3, 3) float64 camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (px).
        d: distortion coefficients (plumb_bob: k1, k2, t1, t2, k3; equidistant: k1..k4).
        distortion_model: 'plumb_bob' or 'equidistant', as realsense-ros names them.
    """

    width: int
    height: int
    k: np.ndarray
    d: tuple
    distortion_model: str


@dataclass(frozen=True, eq=False)
class Frame:
    """One synchronized colour/depth pair.

    Attributes:
        rgb: (H, W, 3) uint8 colour image.
        depth: uint16 depth in millimetres, 0 = invalid; (H, W) of the colour image when
            aligned, else of the depth stream.
        stamp_ns: capture time on the host clock (ns): device time plus an offset fixed at the
            first frame after `start()`.
        depth_scale_m: metres per raw depth unit reported by the device's depth sensor.
        intrinsics: colour stream intrinsics.
        depth_intrinsics: intrinsics of `depth` (the colour ones when aligned).
    """

    rgb: np.ndarray
    depth: np.ndarray
    stamp_ns: int
    depth_scale_m: float
    intrinsics: Intrinsics
    depth_intrinsics: Intrinsics


def to_millimetres(raw: np.ndarray, depth_scale_m: float) -> np.ndarray:
    """Raw depth units -> uint16 millimetres; 0 stays 0, beyond 65.535 m becomes 0.

    Args:
        raw: (H, W) uint16 depth in device units.
        depth_scale_m: metres per unit (the depth sensor's `get_depth_scale()`).

    Returns:
        (H, W) uint16 millimetres, rounded to the nearest millimetre.
    """
    mm = np.rint(raw.astype(np.float64) * (depth_scale_m * 1000.0))
    mm[mm > MAX_DEPTH_MM] = 0
    return mm.astype(np.uint16)


class RealSenseCamera:
    """A RealSense camera (or its recording) as a source of `Frame`s: start, read, stop.

    Not thread-safe: one thread calls `start`, `read` and `stop`.
    """

    def __init__(self, config: RealSenseConfig,
                 clock_ns: Callable[[], int] = time.time_ns):
        """Prepare, without touching the device.

        Args:
            config: what to open.
            clock_ns: host clock (ns) the device time is mapped onto, e.g. the node's ROS clock.
        """
        self.config = config
        self._clock_ns = clock_ns
        self._pipeline = self._playback = None
        self._finished = False
        self._serial = ''  # of the live device last opened

    @property
    def finished(self) -> bool:
        """True once a recording played to its end (a live camera never finishes)."""
        return self._finished

    def start(self) -> None:
        """Open the device or the recording and start streaming.

        Raises:
            CameraError: no camera, wrong serial, missing or unreadable recording, or a stream
                profile the device cannot deliver; the message says what to do.
        """
        import pyrealsense2 as rs
        self.stop()
        config = rs.config()
        if self.config.playback_file:
            self._configure_playback(rs, config)
        else:
            self._configure_live(rs, config)
        pipeline = rs.pipeline()
        try:
            profile = config.resolve(pipeline)
        except RuntimeError as err:
            raise CameraError(self._resolve_failure(err)) from err
        playback = profile.get_device().as_playback() if self.config.playback_file else None
        if playback is not None:
            # Start paused: the recording would begin when the first sensor starts, before the
            # pipeline listens to the second one, and lose its first frames.
            playback.set_real_time(self.config.playback_real_time)
            playback.pause()
        try:
            profile = pipeline.start(config)
        except RuntimeError as err:
            raise CameraError(f'the camera did not start: {err}. Is another program using it? '
                              'Unplug and replug it if this persists.') from err
        self._pipeline, self._playback = pipeline, playback
        if playback is None:
            self._serial = profile.get_device().get_info(rs.camera_info.serial_number)
        self._setup_streams(rs, profile)
        if playback is not None:
            self._resume(playback)

    def _resume(self, playback) -> None:
        if self.config.playback_real_time:
            playback.resume()
            return
        # A non-real-time reader waits until read() takes each frame set, and resume() waits
        # for the reader: resume from a helper thread.
        threading.Thread(target=playback.resume, name='realsense_resume', daemon=True).start()

    def _configure_playback(self, rs, config) -> None:
        path = os.path.abspath(os.path.expanduser(self.config.playback_file))
        if not os.path.isfile(path):
            raise CameraError(
                f'playback_file {path} does not exist: give the path of a .db3 recording '
                '(realsense-viewer or rs.recorder), or set playback_file to "" to use a live '
                'camera')
        config.enable_device_from_file(path, repeat_playback=False)
        # A recording can only replay the profiles it holds: take them as recorded.
        config.enable_stream(rs.stream.color)
        config.enable_stream(rs.stream.depth)

    def _configure_live(self, rs, config) -> None:
        serials = [d.get_info(rs.camera_info.serial_number)
                   for d in rs.context().query_devices()]
        serial = self.config.serial_number.lstrip('_')
        if not serials:
            raise CameraError(
                'no RealSense camera found: connect one to a USB 3 port (check with '
                'rs-enumerate-devices), or set playback_file to replay a .db3 recording')
        if serial and serial not in serials:
            raise CameraError(f'no RealSense camera with serial_number {serial}; connected: '
                              f'{", ".join(serials)}. Set serial_number to one of them.')
        if serial:
            config.enable_device(serial)
        c = self.config
        config.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        config.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)

    def _resolve_failure(self, err: Exception) -> str:
        c = self.config
        if c.playback_file:
            return (f'cannot replay {c.playback_file}: {err}. It must be a librealsense '
                    'recording holding a colour and a depth stream.')
        return (f'the camera cannot stream colour rgb8 and depth z16 at {c.width}x{c.height} '
                f'@ {c.fps} fps ({err}); choose width, height and fps from the profiles '
                'rs-enumerate-devices lists')

    def _setup_streams(self, rs, profile) -> None:
        color = profile.get_stream(rs.stream.color).as_video_stream_profile()
        depth = profile.get_stream(rs.stream.depth).as_video_stream_profile()
        if color.format() not in (rs.format.rgb8, rs.format.bgr8):
            self.stop()
            raise CameraError(f'colour format {color.format()} is not supported: record or '
                              'stream rgb8 (or bgr8)')
        self._bgr = color.format() == rs.format.bgr8
        self._depth_scale_m = profile.get_device().first_depth_sensor().get_depth_scale()
        self._intrinsics = _intrinsics(rs, color.get_intrinsics())
        self._align = rs.align(rs.stream.color) if self.config.align_depth else None
        self._depth_intrinsics = (self._intrinsics if self._align
                                  else _intrinsics(rs, depth.get_intrinsics()))
        # The syncer pairs frames closer than half a period; anything else is not a pair.
        self._max_skew_ms = 500.0 / color.fps()
        self._last_numbers = (None, None)
        self._time_base = None  # (device ms, host ns) at the first frame
        self._playback_status_stopped = rs.playback_status.stopped
        self._finished = False

    def read(self) -> Frame | None:
        """The next new colour/depth pair.

        Returns:
            The frame, or None when no pair arrived within `frame_timeout_s`, the recording
            has finished (see `finished`), or the camera is not started.
        """
        if self._pipeline is None:
            return None
        deadline = time.monotonic() + self.config.frame_timeout_s
        while True:
            frames = self._wait(deadline)
            if frames is None:
                return None
            frame = self._convert(frames)
            if frame is not None:
                return frame

    def _wait(self, deadline: float):
        while True:
            ok, frames = self._pipeline.try_wait_for_frames(WAIT_SLICE_MS)
            if ok:
                return frames
            if self._playback and self._time_base is not None and (
                    self._playback.current_status() == self._playback_status_stopped):
                self._finished = True
                return None
            if time.monotonic() >= deadline:
                return None

    def _convert(self, frames) -> Frame | None:
        depth, color = frames.get_depth_frame(), frames.get_color_frame()
        if not depth or not color or not self._is_new_pair(depth, color):
            return None
        if self._align:
            aligned = self._align.process(frames)
            depth, color = aligned.get_depth_frame(), aligned.get_color_frame()
        rgb = np.asanyarray(color.get_data())
        rgb = rgb[..., ::-1].copy() if self._bgr else rgb.copy()
        return Frame(
            rgb=rgb,
            depth=to_millimetres(np.asanyarray(depth.get_data()), self._depth_scale_m),
            stamp_ns=self._host_time_ns(color.get_timestamp()),
            depth_scale_m=self._depth_scale_m, intrinsics=self._intrinsics,
            depth_intrinsics=self._depth_intrinsics)

    def _is_new_pair(self, depth, color) -> bool:
        """False for the stale frames the pipeline repeats and for unmatched partial sets.

        The pipeline hands out a frame set whenever either stream has a new frame, filling the
        other with its last one; only sets where both frames are new and synchronized count.
        """
        numbers = (depth.get_frame_number(), color.get_frame_number())
        if numbers[0] == self._last_numbers[0] or numbers[1] == self._last_numbers[1]:
            return False
        same_clock = depth.get_frame_timestamp_domain() == color.get_frame_timestamp_domain()
        if same_clock and abs(depth.get_timestamp() - color.get_timestamp()) > self._max_skew_ms:
            return False
        self._last_numbers = numbers
        return True

    def _host_time_ns(self, device_ms: float) -> int:
        if self._time_base is None:
            self._time_base = (device_ms, self._clock_ns())
        base_ms, base_ns = self._time_base
        return base_ns + round((device_ms - base_ms) * 1e6)

    def hardware_reset(self, timeout_s: float = 10.0) -> bool:
        """Power-cycle the live camera over USB and wait until it is back; then call `start()`.

        The last resort of the recovery path when restarting the pipeline does not bring frames
        back ("Frames didn't arrive within 5 seconds", realsense-ros #3146): what replugging
        does, without a hand. Stops streaming first.

        Args:
            timeout_s: how long to wait for the camera to come back (s).

        Returns:
            True when the camera was reset and is back; False when there is nothing to reset
            (a recording is playing, or no such camera is connected) or it did not come back.
        """
        self.stop()
        if self.config.playback_file:
            return False
        import pyrealsense2 as rs
        serial = self._serial or self.config.serial_number.lstrip('_')
        device = _find_device(rs, serial)
        if device is None:
            return False
        serial = device.get_info(rs.camera_info.serial_number)
        device.hardware_reset()
        gone = time.monotonic() + RESET_GONE_S
        while _find_device(rs, serial) is not None and time.monotonic() < gone:
            time.sleep(RESET_POLL_S)
        back = time.monotonic() + timeout_s
        while time.monotonic() < back:
            if _find_device(rs, serial) is not None:
                return True
            time.sleep(RESET_POLL_S)
        return False

    def stop(self) -> None:
        """Stop streaming and release the device or the file; safe to call twice."""
        pipeline, self._pipeline, self._playback = self._pipeline, None, None
        if pipeline is not None:
            pipeline.stop()

    def __enter__(self) -> 'RealSenseCamera':
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _find_device(rs, serial: str):
    """The connected camera with this serial number (any camera if ''), or None."""
    for device in rs.context().query_devices():
        if not serial or device.get_info(rs.camera_info.serial_number) == serial:
            return device
    return None


def _intrinsics(rs, intr) -> Intrinsics:
    """pyrealsense2 intrinsics -> `Intrinsics`, naming the model as realsense-ros does."""
    k = np.array([[intr.fx, 0.0, intr.ppx], [0.0, intr.fy, intr.ppy], [0.0, 0.0, 1.0]])
    if intr.model == rs.distortion.kannala_brandt4:
        model, d = 'equidistant', tuple(intr.coeffs[:4])
    else:  # brown_conrady and its variants, none: 5 coefficients in plumb_bob order
        model, d = 'plumb_bob', tuple(intr.coeffs[:5])
    return Intrinsics(width=intr.width, height=intr.height, k=k, d=d, distortion_model=model)
