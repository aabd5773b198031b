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

"""Metric depth and poses from camera images and joint states: pure cores, `nodes/` wraps them.

depth.py      16UC1 mm <-> 32FC1 m (depth_node, sim_node)
filters.py    range clip, temporal smoothing, hole filling of metric depth (depth_node)
mono.py       Depth Anything from a local folder, aligned to metric depth (depth_node, mono)
align.py      least-squares scale (and shift) to metric references; the table plane
objects.py    segmentation + back-projection -> category, SE(3) pose, size (pose_node)
calibrate.py  vla-calibrate: hand-eye camera-to-base transform; the calibration file
worker.py     LatestWorker: slow per-frame work off the callback thread, newest frame first
"""
