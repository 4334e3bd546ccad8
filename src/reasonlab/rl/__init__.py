"""Reinforcement learning on verifiable rewards (advantages, losses, rollouts, ...)."""
