"""Everything that produces a decision at inference time and is shared with training."""
