"""The web page in a real browser: Playwright drives Debian's Chromium against `srgan serve`.

Loads the page from a server started here (bundled srgan_x4 on the CPU), drops a photo on it,
waits for the result, checks it is 4x the input, drags the comparison slider, checks a broken
upload shows the server's message, and saves a screenshot to tests/artifacts/serve_page.png.
Skipped when the `playwright` package or /usr/bin/chromium is missing (`.ci/run` installs
chromium with apt; never `playwright install`, which downloads a browser).
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = os.environ.get("SRGAN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def wait_until(page, expression: str, timeout_s: float = 20.0) -> None:
    """Poll a JS expression with page.evaluate until it is true.

    Not page.wait_for_function: it can evaluate a string predicate with eval inside the page,
    which this page's CSP (no 'unsafe-eval') refuses (one CI run failed so, others passed);
    page.evaluate goes through the debugging protocol, which the CSP does not govern.
    """
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {expression}")
        page.wait_for_timeout(50)


sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)",
                allow_module_level=True)

from serve_support import running_server  # noqa: E402

pytestmark = pytest.mark.slow  # `make test` runs it; the quick loop leaves it out

DROP_FILE_JS = """([b64, name, type]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type }));
    return dt;
}"""


def test_page_upscales_a_dropped_photo_4x(photo, tmp_path):
    src = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(src)
    height, width = photo.shape[:2]
    with running_server(["--device", "cpu", "--jobs", "1"], tmp_path / "server.log") as (base, _proc), \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            foreign, console_errors = [], []
            page.on("request", lambda req: None if req.url.startswith((base, "blob:", "data:"))
                    else foreign.append(req.url))
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.goto(base + "/")
            page.wait_for_selector("#model option[value=srgan_x4]", state="attached", timeout=20_000)
            assert page.input_value("#model") == "srgan_x4"

            # Drag and drop the photo onto the drop zone, then upscale.
            transfer = page.evaluate_handle(DROP_FILE_JS, [base64.b64encode(src.read_bytes()).decode(),
                                                           src.name, "image/png"])
            page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
            wait_until(page, "document.getElementById('thumb').naturalWidth > 0")
            assert "astronaut.png" in page.inner_text("#fileinfo")
            page.click("#go")
            page.wait_for_selector("body[data-state=done]", timeout=60_000)
            natural = page.evaluate("[document.getElementById('after').naturalWidth, "
                                    "document.getElementById('after').naturalHeight]")
            assert natural == [4 * width, 4 * height]
            assert f"{4 * width}×{4 * height}" in page.inner_text("#meta")
            assert page.get_attribute("#download", "download") == "astronaut_x4.png"
            assert page.get_attribute("#download", "href").startswith("blob:")

            page.locator("#slider").fill("30")
            assert "70%" in page.evaluate("document.getElementById('before').style.clipPath")
            page.locator("#slider").fill("50")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve_page.png"), full_page=True)

            # A broken upload: the server's one-line reason is shown on the page.
            broken = tmp_path / "broken.png"
            broken.write_bytes(src.read_bytes()[:300])
            page.set_input_files("#file", str(broken))
            page.click("#go")
            page.wait_for_selector("body[data-state=error]", timeout=30_000)
            message = page.inner_text("#error")
            assert "broken.png" in message and "corrupt or truncated" in message
            assert foreign == [], f"the page requested non-local resources: {foreign}"
            assert not [e for e in console_errors if "400" not in e], console_errors
        finally:
            browser.close()
