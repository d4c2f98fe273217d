"""The detail dial: srgan_x4's output blended with srresnet_x4's, everywhere a user meets it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import srgan
from srgan.cli.main import main
from srgan.serve.app import create_app


@pytest.fixture(scope="module")
def small(photo) -> np.ndarray:
    return np.ascontiguousarray(photo[:24, :24])


@pytest.mark.parametrize("gan, base", [("srgan_x4", "srresnet_x4"), ("srgan_x4_real", "srresnet_x4_real")])
def test_api_dial_ends_are_the_two_bundled_models(small, gan, base):
    at = {a: np.asarray(srgan.upscale(small, model=gan, detail=a, precision="fp32", device="cpu")) for a in (0.0, 0.5, 1.0)}
    psnr_model = np.asarray(srgan.upscale(small, model=base, precision="fp32", device="cpu"))
    gan_model = np.asarray(srgan.upscale(small, model=gan, precision="fp32", device="cpu"))
    assert np.array_equal(at[0.0], psnr_model) and np.array_equal(at[1.0], gan_model)
    assert not np.array_equal(at[0.5], at[0.0]) and not np.array_equal(at[0.5], at[1.0])
    # Mid-dial is the mix of the two images: no colour or brightness of its own (weight-space
    # blending of the long-run srgan_x4 made it 20 grey levels darker).
    assert np.abs(at[0.5].astype(float) - (at[0.0].astype(float) + at[1.0]) / 2).max() <= 1.0
    assert srgan.load_model("srgan_x4", "cpu", detail=0.25).name == "srgan_x4@0.25"


def test_api_dial_errors_name_the_problem(small):
    with pytest.raises(srgan.models.WeightsError, match="bundled GAN models"):
        srgan.load_model("srresnet_x4", "cpu", detail=0.5)
    with pytest.raises(srgan.models.WeightsError, match=r"detail must be in \[0, 1\]"):
        srgan.load_model("srgan_x4", "cpu", detail=1.5)


def test_cli_upscale_detail(tmp_path, small, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(small).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out.png"), "--detail", "0.3", "-q"]) == 0
    assert Image.open(tmp_path / "out.png").size == (96, 96)
    assert main(["upscale", str(src), "-o", str(tmp_path / "x.png"), "-m", "srresnet_x4", "--detail", "0.3"]) == 2
    assert "--detail works with the bundled GAN models" in capsys.readouterr().err


def test_serve_detail_field_and_model_list(small):
    client = TestClient(create_app(models={"srgan_x4": "srgan_x4", "srresnet_x4": "srresnet_x4"}, device="cpu"))
    listed = {m["name"]: m["detail"] for m in client.get("/v1/models").json()["models"]}
    assert listed == {"srgan_x4": True, "srresnet_x4": False}
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, format="PNG")
    files = {"file": ("p.png", buf.getvalue(), "image/png")}
    ok = client.post("/v1/upscale", files=files, data={"model": "srgan_x4", "detail": "0.5"})
    assert ok.status_code == 200 and Image.open(io.BytesIO(ok.content)).size == (96, 96)
    bad = client.post("/v1/upscale", files=files, data={"model": "srresnet_x4", "detail": "0.5"})
    assert bad.status_code == 422 and "no detail dial" in bad.json()["error"]["message"]
    assert client.post("/v1/upscale", files=files, data={"model": "srgan_x4", "detail": "2"}).status_code == 422
    assert 'id="detail"' in client.get("/").text


def test_eval_detail_rows_draw_the_curve(tmp_path, photo, capsys):
    import json

    data = tmp_path / "Tiny"
    data.mkdir()
    Image.fromarray(photo[:64, :64]).save(data / "a.png")
    assert main(["eval", "-m", "srresnet_x4", "srgan_x4", "-d", str(data), "--detail", "0", "1", "--json", "-q",
                 "--device", "cpu"]) == 0
    rows = {r["model"]: r["psnr_y"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert set(rows) == {"srresnet_x4", "srgan_x4@0", "srgan_x4@1"}
    assert rows["srgan_x4@0"] == rows["srresnet_x4"]
