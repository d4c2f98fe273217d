"""Files: atomic writes, hash-checked resumable downloads, one-line error text.

A leaf module (standard library and tqdm only): every layer of the package writes and fetches
files through it, so that a crash never leaves a truncated output and a download is never used
before its hash is checked.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """One line naming the URL or file and what went wrong."""


def first_line(exc: BaseException) -> str:
    """An exception's first message line (or its type name), for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call `write(tmp_path)` for a temp file beside `path`, then rename it over `path`.

    A crash or Ctrl-C mid-write leaves the old file (or nothing) rather than a truncated one.
    The temp file is named ".<stem>.<random><suffix>.tmp", so a folder listing can tell it apart.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # flush to disk before the rename makes it visible
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest`, resuming `dest.part` if present; verified before it is renamed.

    `sha256` is the full hex digest, or a prefix of at least 8 digits where that is all the
    publisher gives (torchvision's file names carry one). A mismatch deletes the part file.
    """
    from tqdm import tqdm

    if len(sha256) < 8:
        raise ValueError(f"{url}: a sha256 of at least 8 hex digits is needed, got {sha256!r}")
    dest = Path(dest)
    if dest.is_file() and sha256_of(dest).startswith(sha256):
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
    if not digest.startswith(sha256):
        part.unlink()
        raise DownloadError(f"{url}: checksum mismatch (got sha256 {digest[:16]}..., expected {sha256[:16]}...); "
                            "the partial file was deleted")
    os.replace(part, dest)
    return dest


def torch_hub_checkpoints() -> Path:
    """torch's download cache (`$TORCH_HOME/hub/checkpoints`, default ~/.cache/torch/hub/checkpoints),
    where torchvision keeps the same files: a copy fetched by either serves both."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"
