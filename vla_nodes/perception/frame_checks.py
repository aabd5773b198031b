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

"""Which camera frames the perception nodes refuse, and why: one exception, one wording.

Where it fits: `depth_node` and `pose_node` check each frame before processing it; a frame
that cannot give a valid result (no camera_info yet, a wrong encoding, sizes that disagree, no
valid depth pixel) raises `FrameRejected` with a level and a reason saying what to fix, which
the node counts and shows in /diagnostics. Nothing that looks valid is published from such a
frame. No ROS: the callers pass encodings and sizes, not messages.
"""

import numpy as np

from vla_nodes import contract

WARN, ERROR = 'warn', 'error'  # waiting for something vs. a misconfigured graph


class FrameRejected(Exception):
    """A frame is not processed: `level` ('warn' | 'error') and `reason` (what to fix)."""

    def __init__(self, level: str, reason: str):
        super().__init__(reason)
        self.level, self.reason = level, reason


def check_frame(encoding: str, size: tuple, info_size, encodings, hint: str) -> None:
    """Refuse a frame the colour camera_info does not describe.

    Args:
        encoding: the frame's encoding.
        size: its (width, height).
        info_size: the colour camera_info's (width, height), None before one arrived.
        encodings: the encodings accepted.
        hint: what the accepted encodings are, for the message.

    Raises:
        FrameRejected: no camera_info yet (warn), or a wrong encoding or size (error).
    """
    if info_size is None:
        raise FrameRejected(WARN, f'no camera_info received yet on {contract.COLOR_INFO_TOPIC}; '
                            'is the camera running?')
    if encoding not in encodings:
        raise FrameRejected(ERROR, f'{encoding!r} frame: {hint}')
    if tuple(size) != tuple(info_size):
        raise FrameRejected(ERROR, f'image {size[0]}x{size[1]} does not match camera_info '
                            f'{info_size[0]}x{info_size[1]}: align depth to colour and '
                            "publish the colour stream's camera_info")


def check_pair(color_encoding: str, depth_encoding: str, sizes, transform_known: bool) -> None:
    """Refuse a colour / metric depth pair that cannot give object poses.

    Args:
        color_encoding: the colour frame's encoding.
        depth_encoding: the depth frame's encoding.
        sizes: the set of (width, height) of colour, depth and camera_info; None before a
            camera_info arrived.
        transform_known: the camera-to-base transform is known.

    Raises:
        FrameRejected: still waiting (warn), or wrong encodings or unaligned sizes (error).
    """
    if sizes is None or not transform_known:
        raise FrameRejected(WARN, 'waiting for camera_info and the camera-to-base transform '
                            '(calibration_file or /tf_static)')
    if color_encoding not in ('rgb8', 'bgr8') or \
            depth_encoding != contract.METRIC_DEPTH_ENCODING:
        raise FrameRejected(ERROR, f'colour {color_encoding!r} / depth {depth_encoding!r}: '
                            'expected rgb8 (or bgr8) and 32FC1 metres from depth_node')
    if len(sizes) > 1:
        raise FrameRejected(ERROR, f'colour, depth and camera_info sizes differ {sizes}: '
                            'depth must be aligned to colour')


def valid_fraction(depth_m: np.ndarray, why_invalid: str) -> float:
    """The fraction of finite pixels of `depth_m`; FrameRejected (warn) when there is none.

    Args:
        depth_m: (H, W) metres, NaN = invalid.
        why_invalid: the rejection reason when no pixel is valid.
    """
    valid = float(np.isfinite(depth_m).mean())
    if valid == 0.0:
        raise FrameRejected(WARN, why_invalid)
    return valid
