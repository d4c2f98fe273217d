"""`srgan data download`: standard data sets, resumable, verified by SHA-256.

Sources live in `sources.json` beside this file: DIV2K's official HR archives, and the Set5,
Set14 and BSD100 benchmark images file by file from pinned commits of public repositories.
A download goes to `NAME.part` (continued with an HTTP Range request after an interruption),
is checked against its SHA-256 and only then renamed; a mismatch deletes it and fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

DATASETS: dict[str, dict] = json.loads((resources.files("srgan") / "data" / "sources.json").read_text())
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """One line naming the URL or file and what went wrong."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest`, resuming `dest.part` if present; verified before it is renamed."""
    if dest.is_file() and sha256_of(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if start and response.status != 206:  # the server ignored the range: start over
                start = 0
            total = response.length + start if response.length is not None else None
            with open(part, "ab" if start else "wb") as f, tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=dest.name, leave=False,
                disable=total is not None and total < 10 * CHUNK,
            ) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # range past the end: the part file is complete already
            pass
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: download failed ({reason}); run the same command again to resume") from None
    digest = sha256_of(part)
    if digest != sha256:
        part.unlink()
        raise DownloadError(f"{url}: checksum mismatch (got sha256 {digest[:16]}..., expected {sha256[:16]}...); "
                            "the partial file was deleted")
    os.replace(part, dest)
    return dest


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
