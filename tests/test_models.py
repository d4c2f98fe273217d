import numpy as np
import pytest
import torch

from srgan.models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("scale, params", [(2, 1_401_749), (4, 1_549_462), (8, 1_697_175)])
def test_generator_parameter_count_and_shape(scale, params):
    g = Generator(GeneratorConfig(scale=scale)).eval()
    assert count(g) == params  # x4: the paper's 1.55 M
    assert g.scale == scale
    with torch.no_grad():
        y = g(torch.rand(2, 3, 12, 10))
    assert y.shape == (2, 3, 12 * scale, 10 * scale)


def test_generator_layout_matches_the_paper():
    g = Generator()
    assert len(g.body) == 16
    assert g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    assert len(g.upsample) == 2 and g.upsample[0].conv.out_channels == 256


def test_eval_output_is_clamped_to_unit_range_but_training_output_is_not():
    g = Generator(GeneratorConfig(num_blocks=1, channels=8))
    with torch.no_grad():
        g.tail.bias.fill_(5.0)
        assert g.train()(torch.rand(1, 3, 8, 8)).max() > 1
        y = g.eval()(torch.rand(1, 3, 8, 8))
    assert 0.0 <= y.min() and y.max() <= 1.0


def test_generator_config_rejects_bad_values():
    with pytest.raises(ValueError, match="scale"):
        GeneratorConfig(scale=3)
    with pytest.raises(ValueError, match="num_blocks"):
        GeneratorConfig(num_blocks=0)
    with pytest.raises(ValueError, match="channels"):
        GeneratorConfig(channels="64")


def test_discriminator_paper_layout_and_other_crop_sizes():
    d = Discriminator().eval()
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.features) == 7
    assert d.classifier[1].in_features == 512 * 6 * 6 and d.classifier[1].out_features == 1024
    assert count(d) == 23_563_649
    with torch.no_grad():
        for size in (96, 128, 64):
            assert d(torch.rand(2, 3, size, size)).shape == (2, 1)
    assert Discriminator(DiscriminatorConfig(input_size=128)).classifier[1].in_features == 512 * 8 * 8


def test_receptive_radius_is_the_sum_of_kernel_reaches():
    assert GeneratorConfig().receptive_radius == 40  # 4 + 32 + 1 + (1 + 0.5) + 1
    assert GeneratorConfig(num_blocks=2, channels=8).receptive_radius == 12


def test_detail_blend_is_the_output_blend_on_every_engine_path():
    from srgan.inference import upscale_array
    from srgan.inference.fastpath import detail_blend_model, srresnet_model

    torch.manual_seed(0)
    cfg = GeneratorConfig(num_blocks=1, channels=8)
    a, b = Generator(cfg).eval(), Generator(cfg).eval()
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    ends = [upscale_array(srresnet_model(g), image, precision="fp32").astype(np.float64) for g in (a, b)]
    blend = detail_blend_model(a, b, 0.25, "blend")
    expected = 0.75 * ends[0] + 0.25 * ends[1]
    for tile in (0, 16):  # 0: the CPU's streamed path; 16: tiles through build()
        got = upscale_array(blend, image, tile=tile, precision="fp32")
        assert np.abs(got - expected).max() <= 1.0, tile  # each end was rounded to uint8 on its own
        assert torch.is_grad_enabled()  # the two interleaved streams leave autograd as they found it
    with pytest.raises(ValueError, match=r"detail must be in \[0, 1\]"):
        detail_blend_model(a, b, 1.5, "bad")
    with pytest.raises(ValueError, match="different architectures"):
        detail_blend_model(a, Generator(GeneratorConfig(num_blocks=2, channels=8)), 0.5, "bad")
