"""MGD's mask and LAD's label codes are drawn on the device of their input (documented in
``densekd/models/losses/mgd.py`` and ``densekd/models/segmentors/label_encoding.py``): on CUDA
the same seed gives the same draw, which is not the official code's CPU draw moved to the GPU
but has its distribution. Needs CUDA (skipped on CPU machines; the CPU draws are tested in
test_losses_mgd_pkd_pixel.py and test_lad.py)."""
import math

import pytest
import torch

from densekd.models.losses.mgd import random_spatial_mask
from densekd.models.segmentors.label_encoding import random_code_encoding

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def test_mgd_mask_on_cuda_is_seeded_and_distributed_as_the_official_cpu_draw():
    shape, ratio = (4, 1, 64, 64), 0.65
    torch.manual_seed(5)
    a = random_spatial_mask(4, 64, 64, ratio, device='cuda')
    torch.manual_seed(5)
    b = random_spatial_mask(4, 64, 64, ratio, device='cuda')
    assert a.device.type == 'cuda' and torch.equal(a, b)
    torch.manual_seed(5)
    official = torch.where(torch.rand(shape).to('cuda') > 1 - ratio, 0, 1).float()
    assert not torch.equal(a, official)          # another generator: other masks
    n = a.numel()                                # masked fraction within 5 sigma of ratio
    assert abs((1 - a.mean().item()) - ratio) < 5 * math.sqrt(ratio * (1 - ratio) / n)


def test_lad_codes_on_cuda_are_seeded_and_standard_normal():
    values = torch.randint(0, 7, (64, 8, 8), device='cuda')
    torch.manual_seed(9)
    a = random_code_encoding(values, 7, noise_std=0.0, scale=1.0)
    torch.manual_seed(9)
    b = random_code_encoding(values, 7, noise_std=0.0, scale=1.0)
    assert a.device.type == 'cuda' and torch.equal(a, b)
    torch.manual_seed(9)
    cpu = random_code_encoding(values.cpu(), 7, noise_std=0.0, scale=1.0)
    assert not torch.equal(a.cpu(), cpu)
    # each image's pixel of value 0 carries that image's code: 64 draws of N(0, 1)
    codes = torch.stack([a[i, 0][values[i] == v][0] for i in range(64) for v in (0,)
                         if (values[i] == v).any()])
    assert abs(codes.mean().item()) < 5 / math.sqrt(len(codes))
