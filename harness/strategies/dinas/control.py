"""The direction control of `dinas`: `ws` whose update goes through dinas' projection, fed unrelated inputs.

Selected by `--strategy ws --set strategy.ws.direction_control=true`. The projector is dinas' default
(variant input, apply update, alpha 10, decay 0.99, all layers), but what it absorbs at each step are the
inputs an independently drawn architecture feeds the layers on an independent batch -- never the trained
path's. The step keeps the shape of a projected one (damped along directions typical inputs occupy) while
protecting nothing the training sampled; the measurement still compares against the previous *trained* path,
so its held-out protection shows how much of dinas' protection comes from input statistics alone.
"""
from __future__ import annotations

from dataclasses import asdict

from harness.strategies.dinas.strategy import DinasOptions, DisturbanceImmune

CONTROL_OPTIONS = DinasOptions(absorb_source="unrelated")


class DirectionControl(DisturbanceImmune):
    name = "ws"

    def __init__(self, ctx, ws_options):
        self.ws_options = ws_options
        super().__init__(ctx, CONTROL_OPTIONS)

    def summary(self) -> dict:
        summary = super().summary()
        return {"control": "direction", "ws_options": asdict(self.ws_options), **summary}
