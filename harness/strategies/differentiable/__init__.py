"""Differentiable search (DARTS, DARTS-2nd, GDAS, iDARTS) and the implicit-function hypergradient."""
