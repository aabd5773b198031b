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

"""RealSenseCamera and camera_node on synthetic recordings replayed through real pyrealsense2.

A `rs.software_device` with a colour and a depth stream is recorded with `rs.recorder` to `.db3`
(pattern known pixel by pixel), then replayed with `enable_device_from_file` through the same
pipeline, alignment and conversion code that runs a live camera. No camera is needed.
"""

import math
import time

import numpy as np
import pytest

rs = pytest.importorskip('pyrealsense2')

from vla_nodes import contract, ros  # noqa: E402
from vla_nodes.camera.realsense import (  # noqa: E402
    CameraError, RealSenseCamera, RealSenseConfig, to_millimetres)
from vla_nodes.nodes.camera_node import CameraNode  # noqa: E402
from vla_nodes.nodes.depth_node import DepthNode  # noqa: E402
from vla_nodes.ros import image, local, msgs  # noqa: E402
from vla_nodes.ros.msgs import diagnostic_msgs, sensor_msgs  # noqa: E402

W, H, FPS, N = 64, 48, 30, 10
DEPTH_SCALE_M = 0.0001  # D405-like units, so the conversion to millimetres is really tested
FX, FY, CX, CY = 60.0, 61.0, 31.25, 23.25  # colour; depth is centred, see record()
BROWN_CONRADY = (0.1, -0.2, 0.001, 0.002, 0.03)
HOST_BASE_NS = 5_000_000_000  # the fake host clock's time at the first frame


def expected_mm(i: int) -> np.ndarray:
    """Depth of frame i (mm): 100 + pixel index + i, with an invalid (0) last column."""
    mm = np.arange(W * H, dtype=np.uint16).reshape(H, W) + 100 + i
    mm[:, -1] = 0
    return mm


def expected_rgb(i: int) -> np.ndarray:
    """Colour of frame i: red grows along x, green along y, blue is the frame index."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = np.arange(W, dtype=np.uint8)[None, :] * 4
    rgb[..., 1] = np.arange(H, dtype=np.uint8)[:, None] * 5
    rgb[..., 2] = i
    return rgb


def _intrinsics(ppx, ppy, model=rs.distortion.none, coeffs=(0.0,) * 5):
    intr = rs.intrinsics()
    intr.width, intr.height = W, H
    intr.fx, intr.fy, intr.ppx, intr.ppy = FX, FY, ppx, ppy
    intr.model, intr.coeffs = model, list(coeffs)
    return intr


def _add_stream(sensor, stream, uid, fmt, bpp, intrinsics):
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid = stream, 0, uid
    vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = W, H, FPS, bpp, fmt
    vs.intrinsics = intrinsics
    return sensor.add_video_stream(vs)


def _push(sensor, profile, pixels, bpp, i, stamp_ms):
    frame = rs.software_video_frame()
    frame.pixels, frame.bpp, frame.stride = pixels, bpp, bpp * W
    frame.timestamp, frame.frame_number = stamp_ms, i
    frame.domain = rs.timestamp_domain.hardware_clock
    frame.profile = profile.as_video_stream_profile()
    if bpp == 2:
        frame.depth_units = DEPTH_SCALE_M
    sensor.on_video_frame(frame)


def record(path, n=N, color_model=rs.distortion.none, color_coeffs=(0.0,) * 5,
           gap_after=None, gap_s=0.0):
    """Record n synthetic colour + depth frames at FPS to the .db3 file `path`.

    The depth stream's principal point is the image centre and the colour one sits a quarter
    pixel up and left of it. With identical intrinsics rs.align's pixel-edge rounding leaves
    holes; with this offset each depth pixel covers a 2x2 colour block, rs.align keeps the
    nearest (smallest) depth, and since the depth grows along x and y the aligned depth equals
    the recorded depth exactly.
    """
    device = rs.software_device()
    depth_sensor, color_sensor = device.add_sensor('Depth'), device.add_sensor('Color')
    depth_profile = _add_stream(depth_sensor, rs.stream.depth, 0, rs.format.z16, 2,
                                _intrinsics(CX + 0.25, CY + 0.25))  # centre
    color_profile = _add_stream(color_sensor, rs.stream.color, 1, rs.format.rgb8, 3,
                                _intrinsics(CX, CY, color_model, color_coeffs))
    depth_sensor.add_read_only_option(rs.option.depth_units, DEPTH_SCALE_M)
    identity = rs.extrinsics()
    identity.rotation, identity.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
    depth_profile.register_extrinsics_to(color_profile, identity)
    recorder = rs.recorder(str(path), device)
    depth_sensor.open(depth_profile)
    color_sensor.open(color_profile)
    depth_sensor.start(lambda f: None)
    color_sensor.start(lambda f: None)
    stamp_ms = 1000.0
    for i in range(n):
        raw = (expected_mm(i).astype(np.uint32) * 10).astype(np.uint16)  # 0.1 mm units
        _push(depth_sensor, depth_profile, raw, 2, i, stamp_ms)
        _push(color_sensor, color_profile, expected_rgb(i), 3, i, stamp_ms)
        # The recorder stamps frames on arrival and playback replays that pace.
        pause = gap_s if i == gap_after else 1.0 / FPS
        time.sleep(pause)
        stamp_ms += pause * 1000.0
    for sensor in (depth_sensor, color_sensor):
        sensor.stop()
        sensor.close()
    del recorder  # closes the file
    return path


@pytest.fixture(scope='module')
def recording(tmp_path_factory):
    return record(tmp_path_factory.mktemp('rs') / 'synthetic.db3')


def replay(path, **overrides):
    config = RealSenseConfig(playback_file=str(path), playback_real_time=False, **overrides)
    frames = []
    with RealSenseCamera(config, clock_ns=lambda: HOST_BASE_NS) as camera:
        while (frame := camera.read()) is not None:
            frames.append(frame)
        assert camera.finished
    return frames


def test_playback_returns_every_recorded_frame_aligned_in_millimetres(recording):
    frames = replay(recording)
    assert len(frames) == N
    for i, frame in enumerate(frames):
        assert frame.rgb.dtype == np.uint8 and frame.rgb.shape == (H, W, 3)
        np.testing.assert_array_equal(frame.rgb, expected_rgb(i))
        assert frame.depth.dtype == np.uint16 and frame.depth.shape == (H, W)
        np.testing.assert_array_equal(frame.depth, expected_mm(i))
    assert frames[0].depth_scale_m == pytest.approx(DEPTH_SCALE_M, rel=1e-6)


def test_intrinsics_come_from_the_colour_stream(recording):
    intr = replay(recording)[0].intrinsics
    assert (intr.width, intr.height, intr.distortion_model) == (W, H, 'plumb_bob')
    np.testing.assert_array_equal(intr.k, [[FX, 0, CX], [0, FY, CY], [0, 0, 1]])
    assert intr.d == (0.0,) * 5


def test_stamps_map_device_time_onto_the_host_clock_from_the_first_frame(recording):
    stamps = [f.stamp_ns for f in replay(recording)]
    assert stamps[0] == HOST_BASE_NS
    periods = np.diff(stamps) / 1e6  # ms, as recorded
    assert np.all(np.abs(periods - 1000.0 / FPS) < 5.0)


def test_unaligned_depth_keeps_its_own_stream_and_the_colour_distortion(tmp_path):
    path = record(tmp_path / 'distorted.db3', n=3, color_model=rs.distortion.brown_conrady,
                  color_coeffs=BROWN_CONRADY)
    frames = replay(path, align_depth=False)
    assert len(frames) == 3
    np.testing.assert_array_equal(frames[2].depth, expected_mm(2))  # unaligned: as recorded
    assert frames[0].intrinsics.distortion_model == 'plumb_bob'
    assert frames[0].intrinsics.d == pytest.approx(BROWN_CONRADY, rel=1e-6)
    assert frames[0].depth_intrinsics.k[0, 2] == CX + 0.25  # the depth stream's own K
    assert frames[0].depth_intrinsics.d == (0.0,) * 5


def test_to_millimetres_rounds_and_marks_unrepresentable_depth_invalid():
    raw = np.array([[0, 7, 10004, 65534]], np.uint16)
    np.testing.assert_array_equal(to_millimetres(raw, 0.0001), [[0, 1, 1000, 6553]])
    np.testing.assert_array_equal(to_millimetres(raw, 0.001), [[0, 7, 10004, 65534]])
    np.testing.assert_array_equal(to_millimetres(raw, 0.01), [[0, 70, 0, 0]])


def test_missing_playback_file_says_what_to_do(tmp_path):
    camera = RealSenseCamera(RealSenseConfig(playback_file=str(tmp_path / 'nope.db3')))
    with pytest.raises(CameraError, match=r'nope\.db3 does not exist.*\.db3 recording'):
        camera.start()
    assert camera.read() is None


def test_a_file_that_is_not_a_recording_says_so(tmp_path):
    path = tmp_path / 'notes.db3'
    path.write_text('not a recording')
    with pytest.raises(CameraError, match=r'cannot replay .*notes\.db3.*colour and a depth'):
        RealSenseCamera(RealSenseConfig(playback_file=str(path))).start()


def test_hardware_reset_has_nothing_to_reset_for_a_recording(recording):
    camera = RealSenseCamera(RealSenseConfig(playback_file=str(recording)))
    camera.start()
    assert camera.hardware_reset(timeout_s=0.1) is False
    assert camera.read() is None                      # it stopped streaming first


def test_hardware_reset_without_a_camera_returns_false():
    if len(rs.context().query_devices()) > 0:
        pytest.skip('a RealSense camera is connected')
    assert RealSenseCamera(RealSenseConfig()).hardware_reset(timeout_s=0.1) is False


def test_no_camera_connected_says_what_to_do():
    if len(rs.context().query_devices()) > 0:
        pytest.skip('a RealSense camera is connected')
    with pytest.raises(CameraError, match='no RealSense camera found: connect one'):
        RealSenseCamera(RealSenseConfig()).start()


@pytest.mark.hardware
def test_live_camera_streams_aligned_frames():
    if len(rs.context().query_devices()) == 0:
        pytest.skip('no RealSense camera connected')
    with RealSenseCamera(RealSenseConfig(frame_timeout_s=5.0)) as camera:
        frame = camera.read()
    assert frame is not None
    assert frame.rgb.shape == (480, 640, 3) and frame.depth.shape == (480, 640)
    assert 0 < frame.depth_scale_m < 0.01 and math.isfinite(frame.intrinsics.k[0, 0])


# --- camera_node on the local backend ------------------------------------------------------------

needs_local = pytest.mark.skipif(ros.BACKEND != 'local', reason='drives the local backend')
TOPICS = {
    contract.COLOR_TOPIC: sensor_msgs.Image,
    contract.DEPTH_TOPIC: sensor_msgs.Image,
    contract.COLOR_INFO_TOPIC: sensor_msgs.CameraInfo,
    contract.DEPTH_INFO_TOPIC: sensor_msgs.CameraInfo,
    contract.METRIC_DEPTH_TOPIC: sensor_msgs.Image,
    contract.DIAGNOSTICS_TOPIC: diagnostic_msgs.DiagnosticArray,
}


class Viewer:
    """A second node that keeps everything the camera publishes, per topic."""

    def __init__(self, ctx):
        self.node = local.Node('viewer', context=ctx)
        self.got = {topic: [] for topic in TOPICS}
        for topic, msg_type in TOPICS.items():
            self.node.create_subscription(msg_type, topic, self.got[topic].append, 1000)

    def statuses(self, name='/camera'):
        return [s for a in self.got[contract.DIAGNOSTICS_TOPIC] for s in a.status
                if s.name == name]

    def spin_until(self, camera, done, timeout_s, others=()):
        executor = local.SingleThreadedExecutor(context=self.node.context)
        for node in (self.node, camera, *others):
            executor.add_node(node)
        end = time.monotonic() + timeout_s
        while not done() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        return done()


def camera_node(ctx, path, **params):
    overrides = [ros.Parameter(name, value=value)
                 for name, value in {'playback_file': str(path), **params}.items()]
    return CameraNode(context=ctx, parameter_overrides=overrides)


@needs_local
def test_node_publishes_images_and_camera_info_with_one_stamp_per_pair(ctx, recording):
    viewer = Viewer(ctx)
    depth = DepthNode(context=ctx)   # metric depth from what camera_node publishes
    camera = camera_node(ctx, recording, restart_at_end=False)
    try:
        finished = viewer.spin_until(camera, lambda: any(
            s.message == 'recording finished' for s in viewer.statuses()), timeout_s=5.0,
            others=[depth])
    finally:
        started = time.monotonic()
        camera.destroy_node()
        depth.destroy_node()
        assert time.monotonic() - started < 1.0
    assert finished
    got = viewer.got
    colors, depths = got[contract.COLOR_TOPIC], got[contract.DEPTH_TOPIC]
    # Real-time playback, like a camera: the pipeline may drop a frame, never mix two.
    assert N // 2 <= len(colors) == len(depths) == len(got[contract.COLOR_INFO_TOPIC])
    for color, depth, *infos in zip(colors, depths, got[contract.COLOR_INFO_TOPIC],
                                    got[contract.DEPTH_INFO_TOPIC]):
        stamp = msgs.stamp_to_ns(color.header)
        assert [msgs.stamp_to_ns(m.header) for m in (depth, *infos)] == [stamp] * 3
        assert color.header.frame_id == depth.header.frame_id == contract.CAMERA_FRAME
        assert (color.encoding, depth.encoding) == ('rgb8', '16UC1')
        rgb, mm = image.from_msg(color), image.from_msg(depth)
        i = int(rgb[0, 0, 2])  # the frame index is the blue channel
        np.testing.assert_array_equal(rgb, expected_rgb(i))
        np.testing.assert_array_equal(mm, expected_mm(i))
        for info in infos:
            assert (info.width, info.height, info.distortion_model) == (W, H, 'plumb_bob')
            np.testing.assert_array_equal(info.k, [FX, 0, CX, 0, FY, CY, 0, 0, 1])
            np.testing.assert_array_equal(info.p, [FX, 0, CX, 0, 0, FY, CY, 0, 0, 0, 1, 0])
            assert list(info.d) == [0.0] * 5
    stamps = [msgs.stamp_to_ns(c.header) for c in colors]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert viewer.statuses()[-1].level == diagnostic_msgs.DiagnosticStatus.WARN
    # Through depth_node: metres (float32), NaN where the camera had no depth, same stamp.
    metric = got[contract.METRIC_DEPTH_TOPIC]
    assert len(metric) >= len(depths) - 1      # the first may precede any camera_info
    index_of = {msgs.stamp_to_ns(c.header): int(image.from_msg(c)[0, 0, 2]) for c in colors}
    for msg in metric:
        metres = image.from_msg(msg)
        assert msg.encoding == '32FC1' and msg.header.frame_id == contract.CAMERA_FRAME
        mm = expected_mm(index_of[msgs.stamp_to_ns(msg.header)])
        np.testing.assert_array_equal(np.isnan(metres), mm == 0)
        np.testing.assert_allclose(metres[mm > 0], mm[mm > 0] / 1000.0, rtol=1e-6)


@pytest.fixture(scope='module')
def stalling_recording(tmp_path_factory):
    # 1.3 s of frames, then 1.6 s of nothing (longer than the node's 1 s frame timeout).
    return record(tmp_path_factory.mktemp('rs') / 'stall.db3', n=42, gap_after=39, gap_s=1.6)


@needs_local
def test_node_reports_stalled_frames_and_restarts_the_pipeline(ctx, stalling_recording):
    viewer = Viewer(ctx)
    # A reset is only for a live camera: the recording restarts without one.
    camera = camera_node(ctx, stalling_recording, frame_timeout_s=1.0,
                         hardware_reset_on_recovery=True)
    replayed = lambda: any(  # noqa: E731
        s.level == diagnostic_msgs.DiagnosticStatus.OK and _value(s, 'restarts') == '1'
        for s in viewer.statuses())
    try:
        assert viewer.spin_until(camera, replayed, timeout_s=8.0)
    finally:
        camera.destroy_node()
    statuses = viewer.statuses()
    streaming = next(s for s in statuses if s.message.startswith('streaming'))
    assert streaming.level == diagnostic_msgs.DiagnosticStatus.OK
    assert 20.0 < float(_value(streaming, 'frame_rate_hz')) < 40.0
    stalled = next(s for s in statuses if s.level == diagnostic_msgs.DiagnosticStatus.ERROR)
    assert (stalled.message, _value(stalled, 'frame_rate_hz')) == ('no frames for 1.0 s', '0.000')
    assert statuses.index(streaming) < statuses.index(stalled)
    assert _value(statuses[-1], 'hardware_resets') == '0'
    # After the restart the recording plays again from its first frame.
    blues = [int(image.from_msg(c)[0, 0, 2]) for c in viewer.got[contract.COLOR_TOPIC]]
    assert blues.count(0) + blues.count(1) >= 2 and max(blues) >= 39


@needs_local
def test_a_recording_that_ends_goes_through_the_recovery_path(ctx, recording):
    """The end of a recording is a camera whose frames stopped: restarted, it replays."""
    viewer = Viewer(ctx)
    camera = camera_node(ctx, recording, align_depth=False, frame_timeout_s=0.5)
    replayed = lambda: len(viewer.got[contract.COLOR_TOPIC]) > N + 2 and any(  # noqa: E731
        _value(s, 'restarts') == '1' for s in viewer.statuses())
    try:
        assert viewer.spin_until(camera, replayed, timeout_s=6.0)
    finally:
        camera.destroy_node()
    ended = [s for s in viewer.statuses() if s.message == 'recording ended']
    assert ended and ended[0].level == diagnostic_msgs.DiagnosticStatus.WARN
    blues = [int(image.from_msg(c)[0, 0, 2]) for c in viewer.got[contract.COLOR_TOPIC]]
    assert max(blues) == N - 1 and min(blues[blues.index(max(blues)):]) < 3  # from the start
    # Unaligned depth keeps its own stream's intrinsics, through the node too.
    info = viewer.got[contract.DEPTH_INFO_TOPIC][-1]
    np.testing.assert_array_equal(info.k, [FX, 0, CX + 0.25, 0, FY, CY + 0.25, 0, 0, 1])
    np.testing.assert_array_equal(image.from_msg(viewer.got[contract.DEPTH_TOPIC][-1]),
                                  expected_mm(blues[-1]))


def _value(status, key):
    return next((kv.value for kv in status.values if kv.key == key), None)


@needs_local
def test_node_without_its_recording_fails_at_start_saying_what_to_do(ctx, tmp_path):
    with pytest.raises(CameraError, match='does not exist'):
        camera_node(ctx, tmp_path / 'missing.db3')
