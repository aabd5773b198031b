"""rosbag2 recording, reading and dataset export."""
