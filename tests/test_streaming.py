"""Row streaming (inference/streaming.py): the engine's default CPU path for SRResNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import srgan.inference.streaming as streaming
from srgan.inference.engine import upscale_array
from srgan.inference.fastpath import srresnet_model
from srgan.metrics import psnr
from srgan.models import GeneratorConfig


def _whole(gen, image, precision="fp32"):
    """One forward over the whole image (a single tile), the reference streaming must match."""
    side = max(image.shape[:2])
    return upscale_array(gen, image, tile=side, tile_pad=0, precision=precision)


@pytest.mark.parametrize("scale,h,w", [(4, 37, 29), (2, 5, 3), (8, 20, 11), (4, 1, 7), (4, 9, 1)])
@pytest.mark.parametrize("band", [64, 200, 10**6])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "plain-ops"])
def test_streaming_equals_one_whole_image_forward(randomized, scale, h, w, band, fused, monkeypatch):
    if not fused:  # what runs where oneDNN's fused convs are not used (fp16, Arm)
        monkeypatch.setattr(streaming, "_fusable", lambda dtype: False)
    monkeypatch.setattr(streaming, "BAND_PIXELS", band)
    monkeypatch.setattr(streaming, "MIN_BAND", 1)
    monkeypatch.setattr(streaming, "ONE_PASS_PIXELS", 0)
    gen = randomized(GeneratorConfig(scale=scale, num_blocks=2, channels=8))
    image = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = upscale_array(gen, image, precision="fp32")  # the default path streams
    assert out.shape == (h * scale, w * scale, 3)
    assert np.abs(out.astype(int) - _whole(gen, image)).max() == 0


def test_wide_images_stream_in_overlapping_strips_without_seams(randomized, monkeypatch):
    monkeypatch.setattr(streaming, "MAX_STRIP", 100)
    monkeypatch.setattr(streaming, "ONE_PASS_PIXELS", 0)
    gen = randomized(GeneratorConfig(num_blocks=2, channels=8))
    image = np.random.default_rng(1).integers(0, 256, (30, 250, 3), dtype=np.uint8)
    assert len(streaming._strips(250, gen.config.receptive_radius)) > 2
    out = upscale_array(gen, image, precision="fp32")
    assert np.abs(out.astype(int) - _whole(gen, image)).max() <= 1  # float rounding of other widths


def test_streaming_bf16_stays_within_50_db_of_fp32_and_handles_16_bit(randomized, photo, monkeypatch,
                                                                     bf16_everywhere):
    monkeypatch.setattr(streaming, "ONE_PASS_PIXELS", 0)
    gen = randomized(GeneratorConfig(num_blocks=4, channels=16))
    image16 = photo[:40, :48].astype(np.uint16) * 257
    fp32 = _whole(gen, image16)
    bf16 = upscale_array(gen, image16, precision="bf16")
    assert bf16.dtype == np.uint16
    assert psnr(bf16, fp32, data_range=65535) >= 50


def test_per_channel_prelus_stream_exactly(randomized, monkeypatch):
    """One-slope PReLUs are fused into their convs; per-channel ones (anywhere, before or after a
    pixel shuffle) take the unfused path and must give the same bytes."""
    monkeypatch.setattr(streaming, "ONE_PASS_PIXELS", 0)
    for name in ["head", "body", "up1", "up2"]:
        gen_i = randomized(GeneratorConfig(num_blocks=2, channels=8))
        parent = {"head": gen_i.head, "body": gen_i.body[1], "up1": gen_i.upsample[0], "up2": gen_i.upsample[-1]}[name]
        act = nn.PReLU(8)
        with torch.no_grad():
            act.weight.copy_(torch.linspace(-0.5, 0.5, 8))
        if name == "head":
            parent[1] = act
        else:
            parent.act = act
        image = np.random.default_rng(2).integers(0, 256, (13, 10, 3), dtype=np.uint8)
        streamed = upscale_array(gen_i, image, precision="fp32").astype(int)
        assert np.abs(streamed - _whole(gen_i, image)).max() == 0, name


def test_explicit_tiles_do_not_stream(randomized):
    gen = randomized(GeneratorConfig(num_blocks=1, channels=8))
    image = np.random.default_rng(3).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    calls = []
    descriptor = srresnet_model(gen)
    object.__setattr__(descriptor, "stream", lambda *a: calls.append(a) or iter(()))
    upscale_array(descriptor, image, tile=8, precision="fp32")
    upscale_array(descriptor, image, tile_pad=4, precision="fp32")
    assert not calls
    upscale_array(descriptor, image, precision="fp32")  # small images stream too, in one pass
    assert calls


def test_read_only_images_stream_without_warnings(randomized, monkeypatch):
    """Arrays from PIL are often read-only; streaming copies a band rather than warn about it."""
    import warnings

    monkeypatch.setattr(streaming, "ONE_PASS_PIXELS", 0)
    gen = randomized(GeneratorConfig(num_blocks=1, channels=8))
    image = np.random.default_rng(4).integers(0, 256, (12, 9, 3), dtype=np.uint8)
    image.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = upscale_array(gen, image, precision="fp32")
    assert np.abs(out.astype(int) - _whole(gen, image)).max() == 0
