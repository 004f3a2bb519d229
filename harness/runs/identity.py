"""A run's identity: everything that determines its numbers, recorded in config.json and checked on resume.

Identity = resolved config (compute.threads included) + the running strategy's resolved options + space +
seed + digests of the data files + the device kind. A resume that differs in any of them would silently
mix two experiments, so it is refused with the differing fields named.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from harness.config import SECTIONS
from harness.errors import HarnessError
from harness.runs.fileio import read_json, sha256_file

_DIGESTS: dict[tuple, str] = {}


def device_kind(device: torch.device) -> str:
    """What a run computed on, as far as it changes the numbers (the GPU model, not its index)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def file_digest(path: Path) -> str:
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).name


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def digest_of(identity: dict) -> str:
    body = {k: v for k, v in identity.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def recorded_config(cfg, strategy: str) -> dict:
    """The resolved config as runs record it: only the running strategy's options."""
    config = cfg.to_dict()
    config["strategy"] = {strategy: cfg.strategy.get(strategy, {})}
    return config


def config_identity(req, cfg, options) -> dict:
    """The part of the identity known without reading data or choosing a device."""
    config = recorded_config(cfg, req.strategy)
    return {
        "strategy": req.strategy,
        "space": req.space,
        "seed": req.seed,
        "config": _jsonable(config),
        "options": _jsonable(dataclasses.asdict(options)) if dataclasses.is_dataclass(options) else {},
        # Plug-in modules can change what a name means: a resume must import the same ones (absent when none,
        # so the identities of runs without plug-ins are unchanged).
        **({"plugins": list(getattr(req, "plugins", ()))} if getattr(req, "plugins", ()) else {}),
    }


def run_identity(req, cfg, options, files: list[Path], root, device: torch.device) -> dict:
    identity = config_identity(req, cfg, options)
    identity["data_files"] = {_relative(f, root): file_digest(f) for f in files}
    identity["device_kind"] = device_kind(device)
    identity["digest"] = digest_of(identity)
    return identity


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _defaults(options_cls) -> dict[str, Any]:
    """Defaults of every setting, so that one added to the harness after a run started (absent from its
    record) matches when the current value is the default."""
    found = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                found[f"config.{section}.{f.name}"] = _jsonable(f.default)
    if dataclasses.is_dataclass(options_cls):
        for f in dataclasses.fields(options_cls):
            if f.default is not dataclasses.MISSING:
                found[f"options.{f.name}"] = _jsonable(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                found[f"options.{f.name}"] = _jsonable(f.default_factory())
    return found


def differences(recorded: dict, current: dict, options_cls=None) -> list[str]:
    """Human-readable fields in which `current` differs from `recorded` (a config.json identity block)."""
    diffs = []
    for key in ("strategy", "space", "seed", "device_kind"):
        if key in recorded and recorded[key] != current.get(key):
            diffs.append(f"{key.replace('_', ' ')} (run {recorded[key]!r}, this command {current.get(key)!r})")
    if recorded.get("plugins", []) != current.get("plugins", []):
        diffs.append(f"plug-ins (run {recorded.get('plugins', [])!r}, this command {current.get('plugins', [])!r})")
    defaults = _defaults(options_cls)
    for part in ("config", "options"):
        if part not in recorded:
            continue
        old, new = _flatten({part: recorded[part]}), _flatten({part: current.get(part, {})})
        for key in sorted(set(old) | set(new)):
            if key not in old and key in defaults and new[key] == defaults[key]:
                continue  # a setting newer than the run, at its default
            if old.get(key, "<unset>") != new.get(key, "<unset>"):
                label = key.split(".", 1)[1] if part == "config" else f"strategy option {key.split('.', 1)[1]}"
                diffs.append(f"{label} (run {old.get(key, '<unset>')!r}, this command {new.get(key, '<unset>')!r})")
    if "data_files" in recorded:
        old, new = recorded["data_files"], current.get("data_files", {})
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                state = "missing now" if name not in new else "new" if name not in old else "content changed"
                diffs.append(f"data file {name} ({state})")
    return diffs


def legacy_identity(record: dict) -> dict:
    """The identity of a run written before identities were recorded: what its config.json does say."""
    return {k: record[k] for k in ("strategy", "space", "seed", "config") if k in record}


def recorded_identity(run_dir: Path) -> dict:
    """The identity block of a run's config.json (or what an older config.json says); raises if unreadable."""
    try:
        record = read_json(run_dir / "config.json")
        if not isinstance(record, dict) or "config" not in record:
            raise ValueError("no 'config' entry")
    except (OSError, ValueError) as exc:
        raise HarnessError(
            f"cannot resume {run_dir}: its config.json is corrupt ({type(exc).__name__}); move the directory away or use --name for a new run"
        ) from None
    return record.get("identity") or legacy_identity(record)


def check_identity(run_dir: Path, current: dict, options_cls=None) -> None:
    """Raises naming every field in which `current` differs from the run's record. Fields `current` lacks
    (a sweep's check before reading any data) are not compared."""
    recorded = recorded_identity(run_dir)
    recorded = {k: v for k, v in recorded.items() if k in current or k == "plugins"}  # plug-ins are always known
    diffs = differences(recorded, current, options_cls)
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise HarnessError(f"cannot resume {run_dir}: this command differs from the run in {shown}; use --name for a new run")
