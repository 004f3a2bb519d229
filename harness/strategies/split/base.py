"""Split supernets: a tree of sub-supernets, each a full supernet that samples only paths inside its mask.

Shared by `fewshot`, `gm` and `naslid`, which differ only in `split_decision` (which edge, which groups).

Schedule. The whole supernet is warmed up; at each configured split point every current sub-supernet
(leaf) is split on one of its unsplit edges into groups of ops, and each group becomes a child whose mask
allows only that group on the edge. Children start from a deep copy of the parent's weights and optimiser
state (`child_init = "inherit"`) or from fresh weights (`"reinit"`, GM-NAS's choice). Leaves of a level
train round-robin, one optimiser step per global step.

Budget (`budget`):
  equal   the segment between two split points is shared among the leaves, so the total number of
          optimiser steps over all sub-supernets equals the preset's budget -- the `ws` budget;
  native  each leaf gets the whole segment to itself (the papers' schedules: every sub-supernet trains
          as long as the supernet would have from the split on), so the total grows with the leaf count.
Both are recorded in `summary()["steps"]`.

Learning rate. Each sub-supernet has its own SGD optimiser (harness.training.optim). Its LR is a pure function of
a "lineage time" v: the number of steps its lineage (root -> ... -> it) has taken in native mode, the
global step in equal mode. `lr_after_split = "continue"`: the one cosine of the ws run, lr(v) over the
whole budget, so every leaf ends at lr_min exactly when ws does. `"restart"`: a fresh cosine from lr to
lr_min over each segment. Because LR, the sampled path (ctx.rng(1, step), the key ws uses) and the batch
are functions of the step, the warm-up phase repeats ws step for step, and a resumed run repeats an
uninterrupted one.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import HarnessError, one_of
from harness.training import evaluation
from harness.training.optim import clip_gradients, sgd_with_cosine
from harness.strategies.base import Strategy

BUDGETS = ("equal", "native")
CHILD_INITS = ("inherit", "reinit")
LR_AFTER_SPLIT = ("continue", "restart")
# ctx.rng keys (the first key 1 is the per-step path of ws, shared on purpose).
PATH_KEY = 1
CRITERION_KEY = 41
REINIT_KEY = 42
# extra_batch stream of the split criteria's batches (other strategies use small stream numbers).
CRITERION_STREAM = 41


@dataclass(frozen=True)
class SplitOptions:
    # Where each level splits, as fractions of the preset's training budget (robust to preset epochs);
    # `split_epochs`, if given, overrides them with epochs of the preset's schedule (fractions allowed).
    split_fractions: list = field(default_factory=lambda: [0.5])
    split_epochs: list = field(default_factory=list)
    budget: str = "equal"
    child_init: str = "inherit"
    lr_after_split: str = "continue"

    def validate(self) -> None:
        for name, accepted in (("budget", BUDGETS), ("child_init", CHILD_INITS), ("lr_after_split", LR_AFTER_SPLIT)):
            if getattr(self, name) not in accepted:
                raise one_of(f"split option {name}", getattr(self, name), accepted)
        for name in ("split_fractions", "split_epochs"):
            values = getattr(self, name)
            if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise HarnessError(f"{name}={values!r} must be a list of numbers")
        for v in self.split_fractions:
            if not 0 <= v < 1:
                raise HarnessError(f"split_fractions value {v!r} must be in [0, 1)")
        if any(v < 0 for v in self.split_epochs):
            raise HarnessError(f"split_epochs={self.split_epochs!r} must be non-negative")
        if not (self.split_epochs or self.split_fractions):
            raise HarnessError("split_fractions and split_epochs are both empty: at least one split is needed")


@dataclass(frozen=True)
class Segment:
    """Global steps [start, end) during which `leaves` sub-supernets of one level train round-robin."""

    level: int
    start: int
    end: int
    leaves: int
    lineage_start: int  # lineage time v at the segment's first step
    lineage_end: int


def plan_segments(total: int, split_steps: Sequence[int], branching: Sequence[int], budget: str) -> list[Segment]:
    """The training schedule: `split_steps` are positions on the ws timeline (0 <= s < total, increasing)."""
    bounds = [0, *split_steps, total]
    if any(later <= earlier for earlier, later in zip(split_steps, split_steps[1:])) or any(not 0 <= s < total for s in split_steps):
        raise HarnessError(f"split steps {list(split_steps)} must be strictly increasing and within 0..{total - 1}")
    segments, start, leaves = [], 0, 1
    for level in range(len(bounds) - 1):
        if level > 0:
            leaves *= branching[level - 1]
        span = bounds[level + 1] - bounds[level]
        length = span * leaves if budget == "native" else span
        segments.append(Segment(level, start, start + length, leaves, bounds[level], bounds[level + 1]))
        start += length
    return segments


def require_fixed_edges(ctx) -> None:
    if not ctx.space.decisions():
        raise HarnessError(
            f"split strategies partition the candidate ops of fixed cell edges; space {ctx.space.name!r} has none (its topology is itself searched); accepted spaces: nb201"
        )


@dataclass
class SubSupernet:
    id: int
    level: int
    mask: list[tuple[int, ...]]  # allowed op indices per edge
    split_edges: tuple[int, ...]  # edges split in its lineage
    parent: int | None
    steps: int = 0  # optimiser steps this sub-supernet took itself
    supernet: Any = None  # only leaves hold weights
    optimizer: Any = None
    params: Any = None
    lr_factor: Any = None  # lineage time -> LR multiplier of this node's cosine

    def contains(self, arch) -> bool:
        return all(op in allowed for op, allowed in zip(arch.ops, self.mask))

    def record(self) -> dict:
        return {"id": self.id, "level": self.level, "mask": [list(m) for m in self.mask],
                "split_edges": list(self.split_edges), "parent": self.parent, "steps": self.steps}


@dataclass
class SplitDecision:
    edge: int
    groups: list[tuple[int, ...]]  # op indices, one tuple per child
    details: dict = field(default_factory=dict)  # criterion scores, for the record


class SplitStrategy(Strategy):
    """The shared mechanism; subclasses implement `split_decision` and `children_per_split`."""

    Options = SplitOptions
    supports_forced_arch = True

    def __init__(self, ctx, options):
        require_fixed_edges(ctx)
        super().__init__(ctx, options)
        steps_per_epoch = max(1, ctx.data.steps_per_epoch)
        if options.split_epochs:
            self.split_steps = [int(round(e * steps_per_epoch)) for e in options.split_epochs]
        else:
            self.split_steps = [int(round(f * ctx.total_steps)) for f in options.split_fractions]
        sizes = {len(d) for d in ctx.space.decisions()}
        if len(sizes) != 1:
            raise HarnessError(f"split strategies need every edge to have the same number of candidate ops; got {sorted(sizes)}")
        num_edges = len(ctx.space.decisions())
        if len(self.split_steps) > num_edges:
            raise HarnessError(f"{len(self.split_steps)} split levels but the space has only {num_edges} edges to split")
        self.branching = [self.children_per_split(sizes.pop())] * len(self.split_steps)
        self.segments = plan_segments(ctx.total_steps, self.split_steps, self.branching, options.budget)
        self.nodes: dict[int, SubSupernet] = {}
        self.leaves: list[int] = []
        self.decisions: list[dict] = []
        self.criterion_seconds = 0.0
        root = SubSupernet(0, 0, [tuple(d) for d in ctx.space.decisions()], (), None)
        self._equip(root, ctx.space.build_supernet(ctx.shape).to(ctx.device))
        self.nodes[0] = root
        self.leaves = [0]

    # -- what a criterion module provides ---------------------------------------------------------------

    @abstractmethod
    def children_per_split(self, num_ops: int) -> int:
        """How many children one split of an edge with `num_ops` candidate ops makes."""

    @abstractmethod
    def split_decision(self, node: SubSupernet, step: int) -> SplitDecision:
        """Which unsplit edge of `node` to split, and the op groups of its children (no ground truth)."""

    # -- helpers for criteria ---------------------------------------------------------------------------

    def unsplit_edges(self, node: SubSupernet) -> list[int]:
        return [e for e in range(len(node.mask)) if e not in node.split_edges]

    def criterion_batch(self, step: int, index: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch `index` of a criterion evaluated at `step`: training images (never held-out ones), `size` rows
        assembled from consecutive draws of one stream so that, within an epoch, no image repeats."""
        per_draw = self.ctx.data.cfg.batch_size
        draws = -(-size // per_draw)
        xs, ys = [], []
        for j in range(draws):
            x, y = self.ctx.data.extra_batch(self.ctx.seed, step + index * draws + j, CRITERION_STREAM)
            xs.append(x)
            ys.append(y)
        return torch.cat(xs)[:size], torch.cat(ys)[:size]

    def criterion_rng(self, step: int, node: SubSupernet, *keys: int) -> np.random.Generator:
        return self.ctx.rng(CRITERION_KEY, step, node.id, *keys)

    # -- schedule ----------------------------------------------------------------------------------------

    def training_steps(self) -> int:
        return self.segments[-1].end

    def _segment(self, step: int) -> Segment:
        for seg in self.segments:
            if seg.start <= step < seg.end:
                return seg
        raise HarnessError(f"step {step} is outside the schedule of {self.training_steps()} steps")

    def _lineage_time(self, seg: Segment, step: int) -> int:
        offset = step - seg.start
        return seg.lineage_start + (offset // seg.leaves if self.options.budget == "native" else offset)

    def _equip(self, node: SubSupernet, supernet, optimizer_state: dict | None = None) -> None:
        node.supernet = supernet
        params = [p for p in supernet.parameters() if p.requires_grad]
        node.params = params
        if self.options.lr_after_split == "continue":
            horizon, origin = self.ctx.total_steps, 0
        else:
            seg = self.segments[node.level]
            horizon, origin = seg.lineage_end - seg.lineage_start, seg.lineage_start
        node.optimizer, scheduler = sgd_with_cosine(params, self.ctx.train, horizon)
        if optimizer_state is not None:
            node.optimizer.load_state_dict(optimizer_state)
        cosine = scheduler.lr_lambdas[0]  # the schedule ws uses; LR is set from lineage time, not step count
        node.lr_factor = lambda v: cosine(v - origin)

    def _split_level(self, level: int, step: int) -> None:
        started = time.time()
        new_leaves = []
        for leaf_id in self.leaves:
            parent = self.nodes[leaf_id]
            decision = self.split_decision(parent, step)
            edge = decision.edge
            if edge in parent.split_edges:
                raise HarnessError(f"criterion chose edge {edge}, already split in sub-supernet {parent.id}")
            flat = sorted(op for g in decision.groups for op in g)
            if flat != sorted(parent.mask[edge]) or any(not g for g in decision.groups):
                raise HarnessError(f"split groups {decision.groups} do not partition edge {edge}'s ops {parent.mask[edge]}")
            children = []
            for index, group in enumerate(decision.groups):
                child_id = max(self.nodes) + 1
                mask = list(parent.mask)
                mask[edge] = tuple(sorted(group))
                child = SubSupernet(child_id, level, mask, parent.split_edges + (edge,), parent.id)
                if self.options.child_init == "inherit":
                    self._equip(child, copy.deepcopy(parent.supernet), copy.deepcopy(parent.optimizer.state_dict()))
                else:
                    seed = int(self.ctx.rng(REINIT_KEY, parent.id, index).integers(2**31))
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(seed)
                        fresh = self.ctx.space.build_supernet(self.ctx.shape)
                    self._equip(child, fresh.to(self.ctx.device))
                self.nodes[child_id] = child
                children.append(child_id)
            parent.supernet = parent.optimizer = parent.params = parent.lr_factor = None
            new_leaves.extend(children)
            self.decisions.append({
                "level": level, "step": step, "node": parent.id, "edge": edge,
                "groups": [[self._op_name(op) for op in g] for g in decision.groups],
                "children": children, **decision.details,
            })
        self.leaves = new_leaves
        self.criterion_seconds += time.time() - started

    def _op_name(self, op: int) -> str:
        names = getattr(self.ctx.space, "op_names", None)
        return names[op] if names else str(op)

    def _leaf_for(self, arch) -> SubSupernet:
        holders = [self.nodes[i] for i in self.leaves if self.nodes[i].contains(arch)]
        if len(holders) != 1:
            raise HarnessError(f"architecture {arch} lies in {len(holders)} sub-supernets; the split masks must partition the space")
        return holders[0]

    # -- Strategy interface ------------------------------------------------------------------------------

    def train_step(self, step: int, images: torch.Tensor, labels: torch.Tensor, arch: Any = None) -> float:
        seg = self._segment(step)
        while self.nodes[self.leaves[0]].level < seg.level:
            self._split_level(self.nodes[self.leaves[0]].level + 1, step)
        if arch is None:
            node = self.nodes[self.leaves[(step - seg.start) % seg.leaves]]
            arch = self.ctx.space.sample(self.ctx.rng(PATH_KEY, step), allowed=node.mask)
        else:
            node = self._leaf_for(arch)
        lr = node.lr_factor(self._lineage_time(seg, step))
        for group in node.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lr
        net = node.supernet
        net.train()
        node.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(images, arch), labels)
        loss.backward()
        clip_gradients(node.params, self.ctx.train.grad_clip)
        node.optimizer.step()
        node.steps += 1
        return loss.detach()  # stays on the device: the engine checks finiteness every few steps, not every step

    def estimate(self, archs: Sequence[Any]) -> dict[str, np.ndarray]:
        owner = np.array([self._leaf_for(a).id for a in archs], dtype=np.int64)
        batches = self.ctx.data.eval_batches()
        tally = evaluation.Tally.empty(len(archs), np.array([len(y) for _, y in batches]), self.ctx.flip_views)
        for leaf_id in self.leaves:
            rows = np.flatnonzero(owner == leaf_id)
            if len(rows) == 0:
                continue
            net = self.nodes[leaf_id].supernet
            net.eval()
            tally.put(rows, evaluation.tally_supernet(net, [archs[i] for i in rows], batches, self.ctx.progress,
                                                      f"estimate sub-supernet {leaf_id}", self.ctx.compute.estimate_archs,
                                                      self.ctx.flip_views))
        return {**self.ctx.columns(tally), "sub_supernet": owner}

    def averaged_modules(self) -> list[torch.nn.Module]:
        return [self.nodes[i].supernet for i in self.leaves]

    def state_dict(self) -> dict:
        return {
            "nodes": [n.record() for n in self.nodes.values()],
            "leaves": list(self.leaves),
            "weights": {i: {"supernet": self.nodes[i].supernet.state_dict(), "optimizer": self.nodes[i].optimizer.state_dict()}
                        for i in self.leaves},
            "decisions": self.decisions,
            "criterion_seconds": self.criterion_seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        self.nodes = {}
        for rec in state["nodes"]:
            node = SubSupernet(rec["id"], rec["level"], [tuple(m) for m in rec["mask"]], tuple(rec["split_edges"]),
                               rec["parent"], rec["steps"])
            self.nodes[node.id] = node
        self.leaves = list(state["leaves"])
        for leaf_id in self.leaves:
            weights = state["weights"][leaf_id]
            net = self.ctx.space.build_supernet(self.ctx.shape).to(self.ctx.device)
            net.load_state_dict(weights["supernet"])
            self._equip(self.nodes[leaf_id], net, weights["optimizer"])
        self.decisions = list(state["decisions"])
        self.criterion_seconds = state["criterion_seconds"]

    def summary(self) -> dict:
        total = self.training_steps()
        return {
            "budget": self.options.budget,
            "child_init": self.options.child_init,
            "lr_after_split": self.options.lr_after_split,
            "split_steps": self.split_steps,
            "segments": [dataclasses.asdict(s) for s in self.segments],
            "decisions": self.decisions,
            "leaves": [self.nodes[i].record() for i in self.leaves],
            "steps": {
                "total_optimizer_steps": total,
                "ws_budget": self.ctx.total_steps,
                "ratio_to_ws": total / max(1, self.ctx.total_steps),
                "by_sub_supernet": {str(n.id): n.steps for n in self.nodes.values()},
                "sum_by_sub_supernet": sum(n.steps for n in self.nodes.values()),
            },
            "criterion_seconds": self.criterion_seconds,
        }


@dataclass(frozen=True)
class PartitionOptions(SplitOptions):
    split_fractions: list = field(default_factory=lambda: [0.4, 0.6])  # two levels: 4 sub-supernets
    # Criterion repeats per edge, averaged: one repeat = one fresh training batch and one path sampled
    # inside the leaf's mask, on which every op of the edge is forced in turn (GM-NAS's `repeat`).
    repeats: int = 10
    edge_rule: str = "max_intra"  # see harness.strategies.split.partition

    def validate(self) -> None:
        super().validate()
        from harness.strategies.split.partition import EDGE_RULES

        if self.edge_rule not in EDGE_RULES:
            raise one_of("edge_rule", self.edge_rule, EDGE_RULES)
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool) or self.repeats < 1:
            raise HarnessError(f"repeats={self.repeats!r} must be a positive integer")


class PartitionSplit(SplitStrategy):
    """Binary splits chosen from an op-similarity matrix per unsplit edge (GM-NAS, NAS-LID).

    For every unsplit edge, each candidate op is forced in turn on the same random path elsewhere (a new
    path per batch), the criterion compares the ops, the best balanced 2-way grouping is found
    exhaustively, and `edge_rule` picks the edge. The supernet's weights and buffers are left as found.
    """

    Options = PartitionOptions
    criterion_batch_size: int = 0  # 0: the training batch size

    def children_per_split(self, num_ops: int) -> int:
        return 2

    @abstractmethod
    def op_similarity(self, net, edge: int, ops: Sequence[int], batches, paths) -> np.ndarray:
        """(len(ops), len(ops)) similarity of the ops on `edge`, averaged over (batch, path) pairs."""

    def split_decision(self, node: SubSupernet, step: int) -> SplitDecision:
        from harness.strategies.split.partition import best_partition, choose_edge

        size = self.criterion_batch_size or self.ctx.data.cfg.batch_size
        batches = [self.criterion_batch(step, b, size) for b in range(self.options.repeats)]
        net = node.supernet
        # Probing in train mode would move running BN statistics ("running" bn_mode); put them back after.
        saved = {name: b.clone() for name, b in net.named_buffers()}
        partitions, per_edge = {}, {}
        try:
            for edge in self.unsplit_edges(node):
                paths = [self.ctx.space.sample(self.criterion_rng(step, node, edge, b), allowed=node.mask) for b in range(len(batches))]
                ops = node.mask[edge]
                sim = self.op_similarity(net, edge, ops, batches, paths)
                part = best_partition(sim)
                partitions[edge] = part
                per_edge[str(edge)] = {
                    "ops": [self._op_name(o) for o in ops],
                    "similarity": np.round(sim, 6).tolist(),
                    "best_groups": [[self._op_name(ops[i]) for i in g] for g in part.groups],
                    "intra": part.intra,
                    "cross": part.cross,
                }
        finally:
            with torch.no_grad():
                for name, b in net.named_buffers():
                    b.copy_(saved[name])
            net.zero_grad(set_to_none=True)
        edge = choose_edge(partitions, self.options.edge_rule)
        groups = [tuple(node.mask[edge][i] for i in g) for g in partitions[edge].groups]
        return SplitDecision(edge, groups, {"rule": self.options.edge_rule, "edges": per_edge})

    def summary(self) -> dict:
        return {**super().summary(), "criterion": self.criterion_record()}

    def criterion_record(self) -> dict:
        return {"repeats": self.options.repeats, "edge_rule": self.options.edge_rule,
                "batch_size": self.criterion_batch_size or self.ctx.data.cfg.batch_size}
