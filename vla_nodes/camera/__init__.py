"""Camera cores: `realsense.RealSenseCamera` (live D4xx or `.db3` recording, via pyrealsense2).

Import the module you need (`from vla_nodes.camera.realsense import RealSenseCamera`); this file
imports nothing, so the package loads without pyrealsense2.
"""
