"""How much a projected update protects what earlier paths feed a layer, relative to plain `ws`.

For a layer y = W x, an update dW changes the response to inputs X (rows) by dW X^T. The ratio
||dW X^T|| / ||dW_ws X^T|| compares the update actually applied with the one `ws`'s optimiser would apply
from the same state: 0 = the inputs' responses are untouched, 1 = no protection. Ratios accumulate as
device tensors (no host sync in the training loop) and are read once, by `means`.
"""
from __future__ import annotations

import torch

# heldout: rows of the inputs the previous absorbed path fed the layer, at positions absorption did not draw
#   (never absorbed): what protection and selectivity are computed from;
# absorbed: rows of the same inputs drawn as absorption draws them (for variant "input": exactly the absorbed
#   ones, so their protection is forced by construction): a sanity check only;
# fresh: rows of an independent batch through the current path (never absorbed);
# fresh_where_heldout: the fresh ratio of the layers that had held-out rows (selectivity's denominator).
KINDS = ("heldout", "absorbed", "fresh", "fresh_where_heldout")


class ProtectionMeter:
    def __init__(self, device):
        self.device = device
        self.sums = {kind: torch.zeros((), dtype=torch.float64, device=device) for kind in KINDS}
        self.counts = dict.fromkeys(KINDS, 0)
        self.steps = 0

    def add(self, kind: str, applied: torch.Tensor, reference: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """applied / reference: (out, d) weight changes; rows: (m, d) inputs. float64: the residual of a strict
        projection is far below float32's resolution of the weights themselves."""
        x = rows.to(torch.float64)
        moved = (x @ applied.to(torch.float64).T).norm()
        baseline = (x @ reference.to(torch.float64).T).norm()
        return self.record(kind, moved / baseline.clamp_min(1e-300))

    def record(self, kind: str, ratio: torch.Tensor) -> torch.Tensor:
        """Adds a ratio computed by `add` (under another kind) to `kind`'s mean; returns it."""
        self.sums[kind] += ratio
        self.counts[kind] += 1
        return ratio

    def means(self) -> dict[str, float | None]:
        return {kind: float(self.sums[kind]) / self.counts[kind] if self.counts[kind] else None for kind in KINDS}

    def state_dict(self) -> dict:
        return {"sums": {k: v.clone() for k, v in self.sums.items()}, "counts": dict(self.counts), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.sums = {k: v.to(self.device) for k, v in state["sums"].items()}
        self.counts = dict(state["counts"])
        self.steps = state["steps"]
