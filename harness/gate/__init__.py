"""The CI gate: ranking tau against a committed baseline, and its self-test with planted regressions."""
