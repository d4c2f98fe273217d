"""The inference fast path and the engine's batching / device-transfer paths: same output, CPU only."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srgan.inference import engine
from srgan.inference.engine import upscale_array
from srgan.inference.fastpath import InferenceGenerator, polyphase_weight
from srgan.models import Generator, GeneratorConfig


@pytest.mark.parametrize("k", [3, 5, 9])
@pytest.mark.parametrize("r", [2, 4])
def test_polyphase_conv_is_exact(k, r):
    torch.manual_seed(k * r)
    w, b = torch.randn(3, 5, k, k, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    z = torch.randn(2, 5 * r * r, 7, 6, dtype=torch.float64)
    reference = F.conv2d(F.pixel_shuffle(z, r), w, b, padding=k // 2)
    w2, b2, pad = polyphase_weight(w, b, r)
    assert w2.shape == (3 * r * r, 5 * r * r, 2 * pad + 1, 2 * pad + 1)
    assert torch.allclose(F.pixel_shuffle(F.conv2d(z, w2, b2, padding=pad), r), reference, atol=1e-12)


def test_polyphase_needs_an_odd_square_kernel():
    with pytest.raises(ValueError, match="odd"):
        polyphase_weight(torch.zeros(3, 4, 4, 4), None, 2)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_fast_path_equals_the_generator_in_fp32(randomized, scale):
    gen = randomized(GeneratorConfig(scale=scale, num_blocks=2, channels=8))
    fast = InferenceGenerator.from_generator(gen)
    x = torch.rand(2, 3, 11, 13)
    with torch.no_grad():
        assert torch.allclose(fast(x), gen(x), atol=1e-5)


def test_fast_path_handles_a_per_channel_prelu_after_the_last_shuffle(randomized):
    gen = randomized(GeneratorConfig(num_blocks=1, channels=8))
    gen.upsample[-1].act = nn.PReLU(8)
    with torch.no_grad():
        gen.upsample[-1].act.weight.copy_(torch.linspace(-0.5, 0.5, 8))
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        assert torch.allclose(InferenceGenerator.from_generator(gen)(x), gen(x), atol=1e-5)


def test_fast_path_leaves_the_generator_alone(randomized):
    gen = randomized(GeneratorConfig(num_blocks=1, channels=8)).train()
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    upscale_array(gen, np.zeros((12, 12, 3), np.uint8), precision="fp32")
    assert all(p.requires_grad for p in gen.parameters())
    assert all(p.is_contiguous() for p in gen.parameters())  # not switched to channels_last
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())


def test_generators_with_their_own_forward_run_as_is(photo):
    class Negated(Generator):
        def forward(self, x):
            return 1 - super().forward(x)

    torch.manual_seed(0)
    plain, custom = Generator(GeneratorConfig(num_blocks=1, channels=8)), Negated(GeneratorConfig(num_blocks=1, channels=8))
    custom.load_state_dict(plain.state_dict())
    assert not InferenceGenerator.supports(custom)
    a = upscale_array(plain, photo[:10, :10], precision="fp32").astype(int)
    b = upscale_array(custom, photo[:10, :10], precision="fp32").astype(int)
    assert np.abs(a + b - 255).max() <= 1
    assert all(p.is_contiguous() for p in custom.parameters())  # the fallback leaves it alone too


def test_flop_count_matches_the_convolutions():
    cfg = GeneratorConfig()
    assert cfg.flops_per_lr_pixel == 4_436_352  # the 4.44 MFLOP of the paper's x4 model
    small = GeneratorConfig(scale=8, num_blocks=2, channels=8)
    gen, total = Generator(small), []

    def count(mod, _inp, out):
        total.append(2 * out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1])

    for m in gen.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(count)
    with torch.no_grad():  # the paper's formulation, which flops_per_lr_pixel counts
        feat = gen.head(torch.rand(1, 3, 5, 4))
        gen.tail(gen.upsample(feat + gen.body_tail(gen.body(feat))))
    assert sum(total) == small.flops_per_lr_pixel * 20


def _classic_forward(gen, x):
    feat = gen.head(x)
    out = gen.tail(gen.upsample(feat + gen.body_tail(gen.body(feat))))
    return out if gen.training else out.clamp(0, 1)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_trains_the_paper_network_through_its_polyphase_tail(randomized, scale):
    """Generator.forward (polyphase tail, own PReLU) = the paper's layers, outputs and gradients."""
    gen = randomized(GeneratorConfig(scale=scale, num_blocks=2, channels=8)).double().train()
    x = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    target = torch.rand(2, 3, 7 * scale, 9 * scale, dtype=torch.float64)
    grads = []
    for forward in (gen.forward, lambda t: _classic_forward(gen, t)):
        gen.zero_grad()
        out = forward(x)
        (out - target).square().mean().backward()
        grads.append([out.detach()] + [p.grad.clone() for p in gen.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_fast_prelu_matches_pytorchs_in_bf16_channels_last():
    from srgan.models.srresnet import PReLU

    torch.manual_seed(0)
    x = torch.randn(4, 16, 12, 12).bfloat16().contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(x)
    results = []
    for native in (False, True):
        act = PReLU()
        with torch.no_grad():
            act.weight.fill_(0.3)
        xi = x.clone().requires_grad_()
        (F.prelu(xi, act.weight.bfloat16()) if native else act(xi)).backward(g)
        results.append((xi.grad.float(), act.weight.grad))
    (gx, gw), (ref_gx, ref_gw) = results
    # Within bf16 rounding of the exact gradient (the slope enters in fp32 here, in bf16 in PyTorch's).
    exact_gx = torch.where(x.double() > 0, g.double(), 0.3 * g.double())
    assert (gx.double() - exact_gx).abs().max() <= (ref_gx.double() - exact_gx).abs().max()
    exact = (g.double() * x.double().clamp(max=0)).sum()
    assert abs(float(gw) - float(exact)) <= abs(float(ref_gw) - float(exact)) + 1e-3 * abs(float(exact))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_batched_tiles_give_the_same_output_as_one_at_a_time(tiny_weights, photo, dtype):
    import srgan

    model = srgan.load_model(tiny_weights, device="cpu")
    lr = photo[:40, :36].astype(dtype) * (257 if dtype == np.uint16 else 1)
    one = upscale_array(model, lr, tile=12, precision="fp32", batch_size=1)
    many = upscale_array(model, lr, tile=12, precision="fp32", batch_size=5)  # 4x3 tiles, mixed shapes
    # oneDNN blocks a batch of 5 differently from a batch of 1, so floats differ by ~1e-7: at
    # most one output step apart (16-bit steps are 1.5e-5), and nearly always identical
    # (99.8% of 16-bit values on an AVX2-only CPU, more with AVX-512).
    diff = np.abs(one.astype(int) - many.astype(int))
    assert one.dtype == many.dtype == dtype and diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_batch_size_must_be_positive(tiny_weights, photo):
    import srgan

    with pytest.raises(ValueError, match="batch_size"):
        upscale_array(srgan.load_model(tiny_weights, device="cpu"), photo[:8, :8], batch_size=0)


def test_tiles_load_as_channels_last_floats_without_pinning_on_cpu(photo):
    tiles = engine.plan_tiles(20, 20, 10, 2)[:2]  # same padded shape
    x = engine._load_tiles(photo, tiles, 255.0, torch.device("cpu"))
    assert x.shape == (2, 3, 12, 12) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_pinned()
    expected = torch.from_numpy(photo[0:12, 0:12].astype(np.float32) / 255).permute(2, 0, 1)
    assert torch.equal(x[0], expected)


def test_cudnn_autotune_is_scoped_to_cuda_calls():
    before = torch.backends.cudnn.benchmark
    with engine._cudnn_autotune(torch.device("cuda")):  # only sets a flag: runs without a GPU
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark == before
    with engine._cudnn_autotune(torch.device("cpu")):
        assert torch.backends.cudnn.benchmark == before


def test_auto_tiling_keeps_images_whole_when_one_tile_would_cost_as_much(tiny_weights, monkeypatch):
    import srgan

    model = srgan.load_model(tiny_weights, device="cpu")
    pad = model.tile_overlap
    monkeypatch.setattr(engine, "auto_tile_size", lambda *a: 20)
    side = 20 + 2 * pad  # a padded tile's side
    cpu = torch.device("cpu")
    assert len(engine.tile_plan(model, side, side, 0, None, torch.float32, cpu)) == 1
    assert len(engine.tile_plan(model, side + 1, side, 0, None, torch.float32, cpu)) == 9  # 3x3 of <= 20
    assert len(engine.tile_plan(model, side, side, 30, None, torch.float32, cpu)) == 4  # explicit tiles stay


def test_keep_freed_memory_serves_large_blocks_again_without_page_faults():
    """What `train()` calls on the CPU: a step's large blocks come back from the heap, not as
    fresh pages (a subprocess, so the test run's own allocator is left alone)."""
    import subprocess
    import sys

    code = """
import ctypes, resource, torch
import srgan.inference  # the package loaded, as in train(): in a bare interpreter the brk heap
from srgan.device import keep_freed_memory  # may have no room to grow and the block is mapped anyway
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
def on_main_arena():  # a small block of this thread's arena inside the brk heap, whatever the setting
    p = libc.malloc(1 << 16); libc.free(ctypes.c_void_p(p))
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            return lo <= p < hi
    return False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def cycle():  # 64 MB, over glibc's default mmap cap: like a GAN step's largest activations
    a = torch.empty(64 << 20, dtype=torch.uint8).fill_(1); del a
def median_faults():  # per cycle, after a warm-up cycle; the heap may still grow now and then
    cycle()
    counts = []
    for _ in range(5):
        f = faults(); cycle(); counts.append(faults() - f)
    return sorted(counts)[2]
default = median_faults()
assert keep_freed_memory()
kept = median_faults()
print(default, kept, int(on_main_arena()))
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's malloc is a Linux matter")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    default, kept, main_arena = map(int, out.split())
    assert default > 10_000  # 16k pages of 4 KB faulted in again on every cycle by default
    if not main_arena:
        # In a thread arena glibc maps blocks of 64 MB and more itself whatever the threshold (its
        # heaps are at most 64 MB): 16,385 faults per cycle, as CI once saw. The setting cannot act
        # there. Told apart from the setting failing by where a small block lives, not by the 64 MB one.
        pytest.skip(f"the main thread is not on glibc's main arena here ({kept} faults per cycle)")
    assert kept < 1_000
