"""Download the official CIFAR archives, verify their md5, and extract them atomically.

Extraction goes to a temporary folder beside the target and is renamed into place only when complete,
so an interrupted download never leaves a half-populated dataset folder.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, one_of


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str
    member_dir: str  # top-level folder inside the archive
    target: str  # folder under the data root that receives member_dir


ARCHIVES = {
    "cifar10": Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py", "cifar10",
    ),
    "cifar100": Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python", "cifar100",
    ),
}


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, timeout: float = 60.0) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HarnessError(
            f"could not download {url}: {reason}; check the network, or fetch the file elsewhere and pass --archive PATH"
        ) from None


def _safe_members(tar: tarfile.TarFile, member_dir: str) -> list[tarfile.TarInfo]:
    members = []
    for member in tar.getmembers():
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise HarnessError(f"refusing to extract unsafe archive member {member.name!r}")
        if name.parts and name.parts[0] == member_dir:
            members.append(member)
    if not members:
        raise HarnessError(f"archive has no {member_dir}/ folder; is it the official CIFAR archive?")
    return members


def install(dataset: str, root: Path, archive: Path | None = None, url: str | None = None, md5: str | None = None) -> Path:
    """Fetch (unless `archive` is given), verify and extract; returns the dataset folder."""
    if dataset not in ARCHIVES:
        raise one_of("dataset", dataset, ARCHIVES)
    spec = ARCHIVES[dataset]
    url, md5 = url or spec.url, md5 or spec.md5
    final = Path(root) / spec.target / spec.member_dir
    if archive is not None and not Path(archive).is_file():
        raise HarnessError(f"--archive {archive} is not a file; accepted: the path of a downloaded {Path(url).name}")
    if final.is_dir():
        problem = damage(dataset, final)
        if problem is None:
            return final
        print(f"{dataset} at {final} is damaged ({problem}); extracting it again", file=sys.stderr)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".download-") as tmp:
        tmp = Path(tmp)
        if archive is None:
            archive = tmp / Path(url).name
            fetch(url, archive)
        found = md5_file(archive)
        if found != md5:
            raise HarnessError(f"md5 mismatch for {archive}: got {found}, expected {md5}; the file is corrupt or not the official archive")
        staging = tmp / "extract"
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, members=_safe_members(tar, spec.member_dir))
        except tarfile.TarError as exc:
            raise HarnessError(f"cannot extract {archive}: {exc}") from None
        if final.is_dir():
            # The damaged copy goes into the temporary folder, so it is gone once the new one is in place.
            final.replace(tmp / "damaged")
        (staging / spec.member_dir).replace(final)
    return final


def damage(dataset: str, folder: Path) -> str | None:
    """Why an extracted dataset is unusable (missing, truncated or corrupt batch file), or None if it loads."""
    from harness.data.cifar import LABEL_KEY, TEST_FILES, TRAIN_FILES, read_batch

    for name in TRAIN_FILES[dataset] + TEST_FILES[dataset]:
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        try:
            read_batch(path, LABEL_KEY[dataset])
        except HarnessError:
            return f"{name} is truncated or corrupt"
    return None
