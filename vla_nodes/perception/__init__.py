"""Metric depth and poses from camera images and joint states: pure cores, `nodes/` wraps them.

depth.py      16UC1 mm <-> 32FC1 m (depth_node, sim_node)
filters.py    range clip, temporal smoothing, hole filling of metric depth (depth_node)
mono.py       Depth Anything from a local folder, aligned to metric depth (depth_node, mono)
align.py      least-squares scale (and shift) to metric references; the table plane
objects.py    segmentation + back-projection -> category, SE(3) pose, size (pose_node)
calibrate.py  vla-calibrate: hand-eye camera-to-base transform; the calibration file
worker.py     LatestWorker: slow per-frame work off the callback thread, newest frame first
"""
