"""Proxy-scale ground truth: architectures trained standalone on exactly a preset's task."""
