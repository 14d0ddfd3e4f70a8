import math

import pytest
import torch

from cnnbook.interpret.gabor_fit import fit_gabors, gabor_dictionary, gabor_scores, spatial_pattern
from cnnbook.vision import gabor_kernel


def test_a_gabor_in_the_dictionary_fits_perfectly_at_any_phase_and_amplitude():
    d = gabor_dictionary(7)
    i = 123
    p = {k: float(v[i]) for k, v in d.params.items()}
    big = gabor_kernel(9, sigma=p["sigma"], theta=p["theta"], wavelength=p["wavelength"],
                       gamma=p["gamma"], psi=0.7)
    top, left = 1 + int(p["dy"]), 1 - int(p["dx"])
    k = -2.5 * big[top:top + 7, left:left + 7] + 0.3
    fit = fit_gabors(k[None], d)
    assert fit.correlation[0] > 0.9999
    assert torch.allclose(fit.fitted[0], k.double(), atol=1e-6)


def test_off_grid_gabors_fit_well_and_noise_does_not():
    g = torch.Generator().manual_seed(0)
    kernels = torch.stack([gabor_kernel(7, sigma=1.3 + float(torch.rand((), generator=g)),
                                        theta=float(torch.rand((), generator=g)) * math.pi,
                                        wavelength=3 + 4 * float(torch.rand((), generator=g)),
                                        gamma=0.6, psi=float(torch.rand((), generator=g)) * 6)
                           for _ in range(20)])
    noise = torch.randn(200, 7, 7, generator=g)
    good, bad = gabor_scores(kernels), gabor_scores(noise)
    assert good.min() > 0.9
    assert bad.mean() < 0.6 and good.mean() - bad.mean() > 0.4
    assert ((0 <= bad) & (bad <= 1)).all()


def test_spatial_pattern_of_a_coloured_kernel():
    shape = gabor_kernel(5, sigma=1.5, theta=0.3, wavelength=4.0)
    colour = torch.tensor([0.5, -0.2, 0.8])
    w = (colour[:, None, None] * shape)[None]
    pattern, energy = spatial_pattern(w)
    assert torch.allclose(energy, torch.ones(1, dtype=torch.float64))
    assert torch.allclose(pattern[0] / pattern[0].norm(), shape.double() / shape.norm(), atol=1e-6)
    # a kernel whose channels disagree keeps less of its energy in one pattern
    w2 = torch.stack([shape, shape.T, -shape])[None]
    assert spatial_pattern(w2)[1][0] < 0.99
    assert fit_gabors(w).correlation[0] > 0.99   # theta = 0.3 lies between the grid's angles


def test_flat_kernels_score_zero_and_bad_shapes_are_explained():
    assert gabor_scores(torch.ones(2, 1, 5, 5)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="square"):
        fit_gabors(torch.zeros(2, 3, 5, 4))
    with pytest.raises(ValueError, match="odd"):
        gabor_dictionary(4)
    with pytest.raises(ValueError, match="dictionary"):
        fit_gabors(torch.zeros(2, 5, 5), gabor_dictionary(7))
