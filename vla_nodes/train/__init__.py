"""Training: LeRobot v3 datasets -> batches (data.py) and the vla-train loop (train.py)."""
