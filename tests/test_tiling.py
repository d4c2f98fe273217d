import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srgan.inference.tiling import plan_tiles


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 300), w=st.integers(1, 300), tile=st.integers(-1, 320), pad=st.integers(0, 50))
def test_tile_cores_partition_the_image_and_pads_stay_inside(h, w, tile, pad):
    covered = np.zeros((h, w), dtype=np.int32)
    for t in plan_tiles(h, w, tile, pad):
        assert 0 <= t.py0 <= t.y0 < t.y1 <= t.py1 <= h
        assert 0 <= t.px0 <= t.x0 < t.x1 <= t.px1 <= w
        assert t.y0 - t.py0 == min(pad, t.y0) and t.py1 - t.y1 == min(pad, h - t.y1)
        if tile > 0:
            assert t.y1 - t.y0 <= tile and t.x1 - t.x0 <= tile
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert (covered == 1).all()


def test_whole_image_is_one_tile_when_tile_is_zero():
    (t,) = plan_tiles(50, 70, 0, 10)
    assert (t.y0, t.x0, t.y1, t.x1) == (0, 0, 50, 70)


def test_equal_sized_tiles_for_batching():
    shapes = {(t.y1 - t.y0, t.x1 - t.x0) for t in plan_tiles(300, 300, 100, 8)}
    assert shapes == {(100, 100)}


@pytest.mark.parametrize("h, w, pad", [(0, 5, 1), (5, 0, 1), (5, 5, -1)])
def test_bad_plans_raise(h, w, pad):
    with pytest.raises(ValueError):
        plan_tiles(h, w, 4, pad)


@pytest.mark.parametrize("align", [2, 4, 8])
def test_aligned_plans_start_every_window_on_the_model_grid(align):
    """Models that pixel-unshuffle their input (Real-ESRGAN x2) need windows on its pixel grid."""
    tiles = plan_tiles(101, 77, 30, 5, align=align)
    covered = {(y, x) for t in tiles for y in range(t.y0, t.y1) for x in range(t.x0, t.x1)}
    assert len(covered) == 101 * 77 == sum((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles)
    assert all(t.py0 % align == 0 and t.px0 % align == 0 for t in tiles)
    assert all(t.y0 - t.py0 >= 5 or t.py0 == 0 for t in tiles)
