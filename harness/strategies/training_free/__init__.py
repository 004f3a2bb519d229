"""Training-free baselines and the zero-cost proxies they score with."""
