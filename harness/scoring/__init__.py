"""Scoring: ground truth, scored/probe architecture sets, ranking metrics, estimators and the statistics of verdicts."""
