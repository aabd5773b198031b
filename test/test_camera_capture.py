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

"""CameraCapture's recovery without a camera: a fake one, statuses collected."""

from types import SimpleNamespace

from vla_nodes.camera.capture import CameraCapture, FrameRate, MAX_RESTARTS


class FakeCamera:
    """`frames` frames, then nothing; `finished` says whether it is a recording that ended."""

    def __init__(self, frames: int, recording: bool):
        self.config = SimpleNamespace(frame_timeout_s=0.001,
                                      playback_file='a.db3' if recording else '')
        self.left, self.recording, self.starts, self.stops = frames, recording, 0, 0

    @property
    def finished(self):
        return self.recording and self.left == 0

    def read(self):
        if self.left == 0:
            return None
        self.left -= 1
        return object()

    def start(self):
        self.starts += 1

    def stop(self):
        self.stops += 1


def run(camera, **options):
    frames, statuses = [], []
    capture = CameraCapture(camera, frames.append,
                            lambda level, message, **values: statuses.append((level, message)),
                            **options)
    capture._loop()  # on this thread: the loop returns when it stops for good
    return capture, frames, statuses


def test_a_finished_recording_stops_when_not_replayed():
    capture, frames, statuses = run(FakeCamera(3, recording=True), restart_at_end=False)
    assert len(frames) == capture.frames == 3 and capture.restarts == 0
    assert statuses[-1] == ('warn', 'recording finished')


def test_a_silent_camera_is_restarted_then_given_up_on():
    camera = FakeCamera(0, recording=False)
    capture, frames, statuses = run(camera)
    assert capture.restarts == camera.starts == MAX_RESTARTS
    assert statuses[-1][0] == 'error' and statuses[-1][1].startswith(
        f'no frames after {MAX_RESTARTS} restarts')
    assert camera.stops == MAX_RESTARTS + 1  # each restart, and once at the end


def test_frame_rate_counts_the_last_second():
    rate = FrameRate()
    for i in range(31):
        hz = rate.add(10.0 + i / 30)
    assert abs(hz - 30.0) < 1e-6
    assert rate.add(20.0) == 0.0  # alone in its second
