"""First probe for issue #33's int8 path: one 3x3 64 -> 64 conv on a 256^2 map in fp32, bf16 and
int8 (PyTorch's oneDNN quantized Conv2d), best of 5, this CPU.

    python benchmarks/int8_probe.py
"""

import time

import torch
import torch.nn.functional as F

torch.backends.quantized.engine = "onednn" if "onednn" in torch.backends.quantized.supported_engines else "x86"
print("engines", torch.backends.quantized.supported_engines, "using", torch.backends.quantized.engine)
def best(fn, n=5):
    fn(); t = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return min(t)
x = torch.randn(1, 64, 256, 256).contiguous(memory_format=torch.channels_last)
w = torch.randn(64, 64, 3, 3)
flops = 2 * 9 * 64 * 64 * 256 * 256
with torch.no_grad():
    t32 = best(lambda: F.conv2d(x, w, padding=1))
    xb, wb = x.bfloat16(), w.bfloat16().contiguous(memory_format=torch.channels_last)
    tbf = best(lambda: F.conv2d(xb, wb, padding=1))
    conv = torch.ao.nn.quantized.Conv2d(64, 64, 3, padding=1)
    qw = torch.quantize_per_channel(w, torch.full((64,), 0.02), torch.zeros(64, dtype=torch.long), 0, torch.qint8)
    conv.set_weight_bias(qw, None)
    conv.scale, conv.zero_point = 0.05, 0
    qx = torch.quantize_per_tensor(x, 0.03, 0, torch.quint8)
    tq = best(lambda: conv(qx))
for name, t in (("fp32", t32), ("bf16", tbf), ("int8 (quantized.Conv2d)", tq)):
    print(f"{name}: {t*1000:.1f} ms, {flops / t / 1e9:.0f} GFLOP/s")
