"""`srgan data download`: standard data sets, resumable, verified by SHA-256.

Sources live in `sources.json` beside this file: DIV2K's official HR archives, and the Set5,
Set14 and BSD100 benchmark images file by file from pinned commits of public repositories.
A download goes to `NAME.part` (continued with an HTTP Range request after an interruption),
is checked against its SHA-256 and only then renamed; a mismatch deletes it and fails.
"""

from __future__ import annotations

import json
import logging
import zipfile
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from ..files import DownloadError, download

log = logging.getLogger(__name__)

DATASETS: dict[str, dict] = json.loads((resources.files("srgan") / "data" / "sources.json").read_text())


def safe_extract(archive: Path, target: Path) -> None:
    """Unzip, refusing members that would land outside `target` (zip-slip)."""
    with zipfile.ZipFile(archive) as zf:
        root = target.resolve()
        for member in zf.namelist():
            if not (root / member).resolve().is_relative_to(root):
                raise DownloadError(f"{archive}: refusing unsafe member path {member!r}")
        zf.extractall(target)


def fetch_dataset(name: str, root: Path) -> Path:
    """Download (and unpack) data set `name` under `root`; returns its folder."""
    if name not in DATASETS:
        raise DownloadError(f"unknown data set {name!r}; choose from {', '.join(sorted(DATASETS))}")
    spec = DATASETS[name]
    folder = root / spec["folder"]
    for item in tqdm(spec["files"], desc=name, unit="file", disable=len(spec["files"]) < 5):
        dest = download(item["url"], folder / item["name"], item["sha256"])
        if item.get("extract"):
            marker = folder / f".{item['name']}.extracted"
            if not marker.exists():
                safe_extract(dest, folder)
                marker.touch()
    log.info("%s ready in %s", name, folder)
    return folder
