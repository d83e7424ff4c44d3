"""FGD masks of a box that starts left of the image: clipped here, dropped by the official
slice (a documented deviation, densekd/models/losses/fgd.py ``fgd_masks``)."""
import torch

from densekd.models.losses.fgd import fgd_masks


def test_box_left_of_the_image_is_clipped_where_the_official_slice_drops_it():
    # 16x16 px onto a 4x4 grid: box (-2, 4, 6, 12) -> x -0.5..1.5, y 1..3 -> wmin = -1,
    # wmax = 2, hmin = 1, hmax = 3; unclipped counts 3 rows x 4 cols -> 1/12 per cell
    fg, bg = fgd_masks([torch.tensor([[-2.0, 4.0, 6.0, 12.0]])], [(16, 16)], (4, 4))
    expected = torch.zeros(4, 4)
    expected[1:4, 0:3] = 1 / 12                   # clipped to cols 0..2
    torch.testing.assert_close(fg[0], expected)
    torch.testing.assert_close(bg[0], (expected == 0).float() / 7)
    # the official mask slice [hmin:hmax + 1, wmin:wmax + 1] = [1:4, -1:3]: Python reads the
    # start -1 as column 3, so the slice is empty and the box gets no foreground cell
    official = torch.zeros(4, 4)
    official[1:4, -1:3] = torch.maximum(official[1:4, -1:3], torch.tensor(1 / 12))
    assert official.sum() == 0
