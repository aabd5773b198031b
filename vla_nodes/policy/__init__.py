"""Policy interface, observation transforms, checkpoints."""
