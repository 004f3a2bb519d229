"""Disturbance-immune weight sharing (DI-WS): the strategy and its projection maths."""
