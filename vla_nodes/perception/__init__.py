"""Metric depth and poses from camera images and joint states."""
