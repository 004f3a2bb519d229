"""`describe`: one architecture's canonical form, benchmark index or hash, parameters and FLOPs."""
from __future__ import annotations

import dataclasses

from harness.config import parse_override
from harness.data.paths import data_root
from harness.errors import HarnessError, one_of
from harness.registry import COMMANDS, SPACES
from harness.spaces.nb201.network import count_flops, count_parameters


def shape_from(space, overrides: list[str]):
    """The space's official shape (the benchmark's own scale), changed by `--set shape.KEY=VALUE`."""
    values = dict(space.official_shape)
    fields = {f.name for f in dataclasses.fields(space.shape())}
    for text in overrides:
        path, value = parse_override(text)
        if path[0] == "shape":
            path = path[1:]
        if len(path) != 1 or path[0] not in fields:
            raise one_of("describe --set key", ".".join(path), sorted(f"shape.{f}" for f in fields))
        values[path[0]] = value
    return space.shape(**values)


@COMMANDS.register("describe")
class Describe:
    help = "print an architecture's canonical form, benchmark index/hash, parameter count and FLOPs"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("arch", metavar="ARCH", help="architecture string (nb201: |op~0|+|...|; nb101: BITS|input,...,output)")
        parser.add_argument("--space", default="nb201", help="search space (see `python -m harness list`)")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="shape.KEY=VALUE",
                            help="network shape (default: the benchmark's own, e.g. nb101 stem 128, 3 stacks x 3 cells)")
        parser.add_argument("--resolution", type=int, default=32, help="image side for FLOPs (default 32, CIFAR)")
        parser.add_argument("--data-dir", default=None, help="data directory holding the ground truth (default $HARNESS_DATA)")

    @staticmethod
    def run(args) -> int:
        space = SPACES.get(args.space)()
        arch = space.parse(args.arch)
        shape = shape_from(space, args.overrides)
        if args.resolution < 1:
            raise HarnessError(f"--resolution {args.resolution} must be a positive integer")
        try:
            gt = space.load_ground_truth(data_root(args.data_dir))
        except HarnessError:
            gt = None
        net = space.build_standalone(arch, shape)
        info = {"space": space.name, **space.describe(arch, gt)}
        if gt is None:
            info["ground truth"] = "not available"
        info["shape"] = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(shape).items())
        info["parameters"] = f"{count_parameters(net):,}"
        info[f"FLOPs (MACs, {args.resolution}x{args.resolution})"] = f"{count_flops(net, input_size=args.resolution):,}"
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
        return 0
