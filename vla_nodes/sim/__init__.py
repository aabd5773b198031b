"""MuJoCo simulation of the Piper and its CAN firmware."""
