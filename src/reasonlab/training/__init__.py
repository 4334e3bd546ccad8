"""What every training loop shares: the optimizer and schedule, resumable checkpoints, metrics logs."""
