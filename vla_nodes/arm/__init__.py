"""Piper arm: kinematics, the piper_sdk wrapper, safety filter, trajectory following."""
