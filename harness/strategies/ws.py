"""`ws`: plain weight sharing, SPOS-style -- one uniformly sampled single path trained per step."""
from harness.registry import STRATEGIES
from harness.strategies.supernet import SinglePathStrategy


@STRATEGIES.register("ws")
class WeightSharing(SinglePathStrategy):
    name = "ws"
