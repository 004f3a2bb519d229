"""harness: a benchmark-driven harness for ranking quality of weight-sharing NAS strategies.

Python API (imported on first use, so `import harness` stays light): harness.bench, harness.compare,
harness.sweep and their result types; see harness.api and docs/api.md.
"""

__version__ = "0.1.0"
_API = ("bench", "compare", "sweep", "BenchResult", "CompareResult", "SweepResult")
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
