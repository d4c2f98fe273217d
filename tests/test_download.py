"""`srgan data download` against a local HTTP server with Range support (no internet)."""

import hashlib
import http.server
import threading

import pytest

import srgan.data.download as dl
from srgan.cli.main import main
from srgan.files import DownloadError, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class RangeHandler(http.server.BaseHTTPRequestHandler):
    ranges: list[str] = []

    def do_GET(self):
        data = PAYLOAD if self.path == "/file.bin" else None
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        RangeHandler.ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.ranges = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_resumes_a_partial_download_and_verifies_it(server, tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:300_000])
    download(f"{server}/file.bin", dest, hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert RangeHandler.ranges == ["bytes=300000-"]
    assert not (tmp_path / "file.bin.part").exists()


def test_checksum_mismatch_deletes_the_file(server, tmp_path):
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{server}/file.bin", tmp_path / "f", "0" * 64)
    assert not list(tmp_path.iterdir())


def test_a_published_hash_prefix_is_checked_too(server, tmp_path):
    """torchvision publishes the first 8 hex digits of a file's SHA-256 in its name."""
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert download(f"{server}/file.bin", tmp_path / "f", digest[:8]).read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{server}/file.bin", tmp_path / "g", "0" * 8)
    with pytest.raises(ValueError, match="at least 8 hex digits"):
        download(f"{server}/file.bin", tmp_path / "h", "")


def test_cli_downloads_a_registered_set(server, tmp_path, monkeypatch, capsys):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    monkeypatch.setitem(dl.DATASETS, "set5", {"folder": "Set5", "files": [
        {"url": f"{server}/file.bin", "name": "a.png", "sha256": sha}]})
    assert main(["data", "download", "set5", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "Set5" / "a.png").read_bytes() == PAYLOAD
    monkeypatch.setitem(dl.DATASETS, "set14", {"folder": "Set14", "files": [
        {"url": f"{server}/missing", "name": "b.png", "sha256": sha}]})
    assert main(["data", "download", "set14", "--root", str(tmp_path)]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_registry_has_the_documented_sets():
    assert {"div2k", "set5", "set14", "bsd100"} <= set(dl.DATASETS)
    assert len(dl.DATASETS["bsd100"]["files"]) == 100
    assert all(len(f["sha256"]) == 64 for spec in dl.DATASETS.values() for f in spec["files"])
