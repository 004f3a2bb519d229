"""Datasets: reading official CIFAR pickles, downloading them, and device-resident tensors for training."""
