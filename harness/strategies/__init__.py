"""Search strategies. Every module here registers one (or a family) in harness.registry.STRATEGIES."""
