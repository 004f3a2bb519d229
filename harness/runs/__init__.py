"""Runs: one run end to end (request, identity, lock, atomic files, environment record), and sweeps of many on Ray."""
