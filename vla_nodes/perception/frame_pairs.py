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

"""Colour and depth frames paired by equal stamps, as pose_node's detector needs them.

Where it fits: `pose_node` feeds every colour and metric depth frame here; a frame whose
partner (the other kind, same stamp) already waits comes back as a pair for the detector.
Depth from depth_node keeps its colour frame's stamp, so equal stamps are the right match; the
few newest unmatched frames of each kind wait (a bounded history: a partner that never comes
costs nothing). No ROS: frames are opaque, stamps integer nanoseconds.
"""

import collections
from typing import Any, Optional

PAIR_HISTORY = 4  # colour / depth frames kept while waiting for their partner
KINDS = ('color', 'depth')


class FramePairs:
    """The newest unmatched frames of each kind, by stamp."""

    def __init__(self, history: int = PAIR_HISTORY):
        """Args: history: unmatched frames kept per kind (the oldest are dropped)."""
        self._history = history
        self._frames = {kind: collections.OrderedDict() for kind in KINDS}

    def add(self, kind: str, stamp_ns: int, frame: Any) -> Optional[tuple]:
        """Add a 'color' or 'depth' frame; (colour, depth) when its partner was waiting."""
        mine = self._frames[kind]
        other = self._frames['depth' if kind == 'color' else 'color']
        partner = other.pop(stamp_ns, None)
        if partner is None:
            mine[stamp_ns] = frame
            while len(mine) > self._history:
                mine.popitem(last=False)
            return None
        return (frame, partner) if kind == 'color' else (partner, frame)
