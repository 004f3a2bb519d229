"""harness: a benchmark-driven harness for ranking quality of weight-sharing NAS strategies."""

__version__ = "0.1.0"
