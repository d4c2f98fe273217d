"""Downloads against a local HTTP server with Range support (conftest's range_server; no internet)."""

import hashlib

import pytest

import srgan.data.download as dl
from srgan.cli.main import main
from srgan.files import DownloadError, download


def test_resumes_a_partial_download_and_verifies_it(range_server, tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(range_server.payload[:300_000])
    download(f"{range_server.url}/file.bin", dest, hashlib.sha256(range_server.payload).hexdigest())
    assert dest.read_bytes() == range_server.payload
    assert range_server.ranges == ["bytes=300000-"]
    assert not (tmp_path / "file.bin.part").exists()


def test_checksum_mismatch_deletes_the_file(range_server, tmp_path):
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{range_server.url}/file.bin", tmp_path / "f", "0" * 64)
    assert not list(tmp_path.iterdir())


def test_a_published_hash_prefix_is_checked_too(range_server, tmp_path):
    """torchvision publishes the first 8 hex digits of a file's SHA-256 in its name."""
    digest = hashlib.sha256(range_server.payload).hexdigest()
    assert download(f"{range_server.url}/file.bin", tmp_path / "f", digest[:8]).read_bytes() == range_server.payload
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{range_server.url}/file.bin", tmp_path / "g", "0" * 8)
    with pytest.raises(ValueError, match="at least 8 hex digits"):
        download(f"{range_server.url}/file.bin", tmp_path / "h", "")


def test_cli_downloads_a_registered_set(range_server, tmp_path, monkeypatch, capsys):
    sha = hashlib.sha256(range_server.payload).hexdigest()
    monkeypatch.setitem(dl.DATASETS, "set5", {"folder": "Set5", "files": [
        {"url": f"{range_server.url}/file.bin", "name": "a.png", "sha256": sha}]})
    assert main(["data", "download", "set5", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "Set5" / "a.png").read_bytes() == range_server.payload
    monkeypatch.setitem(dl.DATASETS, "set14", {"folder": "Set14", "files": [
        {"url": f"{range_server.url}/missing", "name": "b.png", "sha256": sha}]})
    assert main(["data", "download", "set14", "--root", str(tmp_path)]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_registry_has_the_documented_sets():
    assert {"div2k", "set5", "set14", "bsd100"} <= set(dl.DATASETS)
    assert len(dl.DATASETS["bsd100"]["files"]) == 100
    assert all(len(f["sha256"]) == 64 for spec in dl.DATASETS.values() for f in spec["files"])
