"""Training: the engine loop, optimisers, batched estimation and weight averaging shared by every strategy."""
