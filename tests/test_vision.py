import math

import pytest
import torch
import torch.nn.functional as F

from cnnbook.vision import (coefficient_of_variation, complex_cell, coordinate_grid,
                            filter_image, gabor_bank, gabor_kernel, grating,
                            half_width_half_max, linear_response, orientation_map,
                            orientations, plot_orientation_map, preferred_orientation,
                            rotate, simple_cell, tuning_curve)


def test_grid_is_centred_with_y_up():
    x, y = coordinate_grid(5)
    assert x[0].tolist() == [-2, -1, 0, 1, 2]  # x grows to the right
    assert y[:, 0].tolist() == [2, 1, 0, -1, -2]  # y grows upwards
    xr, yr = rotate(x, y, math.pi / 2)  # a quarter turn: x' = y, y' = -x
    assert torch.allclose(xr, y, atol=1e-6) and torch.allclose(yr, -x, atol=1e-6)


def test_kernel_follows_the_formula_with_the_sources_settings():
    k = gabor_kernel()  # size 9, sigma 2, theta 0, wavelength 4, gamma 0.5
    assert k.shape == (9, 9) and k.dtype == torch.float32
    assert float(k[4, 4]) == pytest.approx(1.0)  # peak at the centre: envelope 1, cos 0
    assert int(k.abs().argmax()) == 4 * 9 + 4
    # x = 2, y = 0: exp(-4 / 8) * cos(pi)
    assert float(k[4, 6]) == pytest.approx(-math.exp(-0.5), abs=1e-6)
    # x = 0, y = 2: exp(-0.25 * 4 / 8) * cos(0), the envelope only (gamma shrinks y)
    assert float(k[2, 4]) == pytest.approx(math.exp(-0.125), abs=1e-6)
    assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.flip(1))  # even


def test_odd_kernel_is_antisymmetric_and_zero_on_its_axis():
    k = gabor_kernel(psi=math.pi / 2)
    assert torch.allclose(k, -k.flip(1), atol=1e-6)
    assert float(k[:, 4].abs().max()) < 1e-6
    assert float(k.sum()) == pytest.approx(0.0, abs=1e-5)


def test_orientation_turns_the_kernel_counter_clockwise():
    k0 = gabor_kernel(theta=0.0)
    assert torch.allclose(gabor_kernel(theta=math.pi / 2), torch.rot90(k0), atol=1e-6)
    # theta = 45 degrees: stripes run from top-left to bottom-right, so the kernel is
    # constant along that diagonal's direction through the centre when gamma = 1
    k45 = gabor_kernel(theta=math.pi / 4, gamma=1.0)
    diag = torch.diagonal(k45)
    assert torch.allclose(diag, diag.flip(0)) and float(k45[0, 8]) < float(k45[0, 0])
    g = grating(9, math.pi / 4, 4.0)
    assert torch.allclose(torch.diagonal(g), torch.ones(9), atol=1e-6)


def test_zero_mean_kernel_ignores_uniform_light_and_stays_local():
    k = gabor_kernel(wavelength=8.0, zero_mean=True)
    raw = gabor_kernel(wavelength=8.0)
    assert float(raw.sum()) > 1.0  # a wide carrier sees brightness
    assert float(k.sum()) == pytest.approx(0.0, abs=1e-5)
    envelope = gabor_kernel(wavelength=1e9)  # a carrier too long to vary: cos = 1
    c = (raw - k) / envelope  # the correction is a multiple of the envelope: still local
    assert torch.allclose(c, c[4, 4].expand(9, 9), atol=1e-4)
    assert int(k.argmax()) == 4 * 9 + 4


def test_parameters_broadcast_and_bank_order():
    thetas = orientations(4)
    assert torch.allclose(thetas, torch.tensor([0, 0.25, 0.5, 0.75]) * math.pi)
    bank = gabor_bank(thetas, wavelengths=(4.0, 8.0), size=15, sigma=[2.0, 4.0])
    assert bank.shape == (8, 15, 15)
    assert torch.allclose(bank[5], gabor_kernel(15, sigma=4.0, theta=thetas[1], wavelength=8.0))
    assert torch.allclose(gabor_kernel(theta=thetas)[2], gabor_kernel(theta=math.pi / 2))
    with pytest.raises(ValueError, match="3 sigmas for 2 wavelengths"):
        gabor_bank(thetas, (4.0, 8.0), sigma=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("kwargs,message", [
    (dict(size=8), "odd"), (dict(size=0), "positive whole"), (dict(size=2.5), "positive whole"),
    (dict(sigma=0.0), "sigma"), (dict(sigma=-1.0), "sigma"), (dict(wavelength=0), "wavelength"),
    (dict(gamma=0.0), "gamma"), (dict(sigma=float("nan")), "sigma"),
    (dict(sigma=torch.tensor([1.0, 0.0])), "sigma")])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gabor_kernel(**kwargs)


def test_grating_period_phase_and_range():
    g = grating(16, 0.0, 4.0)
    assert torch.allclose(g[:, :-4], g[:, 4:], atol=1e-5)  # repeats every 4 pixels along x
    assert torch.allclose(g[0], g[5])  # constant along y: vertical stripes
    assert torch.allclose(grating(16, 0.0, 4.0, phase=math.pi), -g, atol=1e-5)
    assert float(g.abs().max()) <= 1.0 + 1e-6
    both = grating(9, orientations(3)[:, None], 4.0, torch.tensor([0.0, 1.0])[None, :])
    assert both.shape == (3, 2, 9, 9)
    with pytest.raises(ValueError, match="wavelength"):
        grating(9, 0.0, -2.0)


def test_a_matching_grating_gives_the_largest_response():
    k = gabor_kernel()
    best = linear_response(grating(9, 0.0, 4.0), k)
    assert float(best) == pytest.approx(float((k * grating(9, 0.0, 4.0)).sum()))
    for theta in (0.3, 0.8, 1.57):
        assert float(linear_response(grating(9, theta, 4.0), k)) < float(best)
    # a bigger stimulus is cropped to the receptive field around its centre
    assert float(linear_response(grating(21, 0.0, 4.0), k)) == pytest.approx(float(best), rel=1e-5)
    rates = simple_cell(grating(9, 0.0, 4.0, torch.linspace(0, 6.28, 20)), k)
    assert rates.shape == (20,) and float(rates.min()) == 0.0  # rectified
    with pytest.raises(ValueError, match="smaller than"):
        linear_response(torch.zeros(5, 5), k)


def test_bank_responses_have_one_row_per_cell():
    bank = gabor_bank(orientations(4))
    stim = grating(9, orientations(6)[:, None], 4.0, torch.zeros(1, 3))
    out = linear_response(stim, bank)
    assert out.shape == (4, 6, 3)
    assert torch.allclose(out[2], linear_response(stim, bank[2]))


def test_tuning_curves_peak_at_the_preferred_orientation():
    thetas = orientations(36)
    bank = gabor_bank(orientations(4))
    curves = tuning_curve(bank, thetas, 4.0, phases=8)
    assert curves.shape == (4, 36)
    assert torch.allclose(preferred_orientation(curves, thetas), orientations(4))
    hwhm = torch.rad2deg(half_width_half_max(curves, thetas))
    assert bool(((hwhm > 8) & (hwhm < 30)).all())
    # orthogonal gratings barely drive a cell
    assert float(curves[0, 18]) < 0.05 * float(curves[0, 0])


def test_elongated_and_wider_fields_tune_more_sharply():
    thetas = orientations(72)

    def hwhm(**kw):
        return float(half_width_half_max(tuning_curve(gabor_kernel(**kw), thetas), thetas))

    assert hwhm(size=25, gamma=0.5) < hwhm(size=25, gamma=1.0)
    assert hwhm(size=49, sigma=4.0) < hwhm(size=25, sigma=2.0) < hwhm(size=13, sigma=1.0)
    # with the envelope inside the kernel, the Fourier prediction holds:
    # sin(hwhm) = gamma * wavelength * sqrt(2 ln 2) / (2 pi sigma)
    predicted = math.asin(0.5 * 4 * math.sqrt(2 * math.log(2)) / (2 * math.pi * 2))
    assert hwhm(size=25) == pytest.approx(predicted, rel=0.05)


def test_half_width_of_known_curves():
    thetas = orientations(180)
    d = torch.remainder(thetas - 1.0 + math.pi / 2, math.pi) - math.pi / 2  # circular distance
    s = 0.2
    curve = torch.exp(-d ** 2 / (2 * s ** 2))
    assert float(half_width_half_max(curve, thetas)) == pytest.approx(
        s * math.sqrt(2 * math.log(2)), abs=0.01)
    assert float(half_width_half_max(torch.ones(180), thetas)) == pytest.approx(math.pi / 2)
    with pytest.raises(ValueError, match="no positive"):
        half_width_half_max(torch.zeros(180), thetas)
    with pytest.raises(ValueError, match="evenly"):
        half_width_half_max(curve[:90], thetas[:90])
    with pytest.raises(ValueError, match="at least 3"):
        half_width_half_max(curve, thetas[:10])


def test_complex_cell_is_position_invariant_and_still_orientation_tuned():
    k = gabor_kernel()
    phases = torch.arange(32) * (2 * math.pi / 32)
    simple = simple_cell(grating(9, 0.0, 4.0, phases), k)
    assert torch.allclose(complex_cell(grating(9, 0.0, 4.0, phases), k, pool=1), simple)
    cx = complex_cell(grating(12, 0.0, 4.0, phases), k, pool=4)
    assert float(coefficient_of_variation(simple)) > 1.0
    assert float(coefficient_of_variation(cx)) < 0.15
    assert float(cx.min()) > 0.5 * float(cx.max())
    ortho = complex_cell(grating(12, math.pi / 2, 4.0, phases), k, pool=4)
    assert float(ortho.max()) < 0.1 * float(cx.mean())
    bank = gabor_bank(orientations(2))
    assert complex_cell(grating(12, 0.0, 4.0, phases), bank, pool=4).shape == (2, 32)
    with pytest.raises(ValueError, match="pool"):
        complex_cell(grating(12, 0.0, 4.0), k, pool=0)
    with pytest.raises(ValueError, match="smaller than"):
        complex_cell(grating(10, 0.0, 4.0), k, pool=4)


def test_coefficient_of_variation():
    assert float(coefficient_of_variation(torch.full((10,), 3.0))) == 0.0
    assert float(coefficient_of_variation(torch.tensor([1.0, 3.0]))) == pytest.approx(0.5)
    assert coefficient_of_variation(torch.ones(4, 5), dim=0).shape == (5,)


def test_filter_image_is_a_same_size_convolution():
    img = torch.rand(20, 24)
    bank = gabor_bank(orientations(3))
    out = filter_image(img, bank)
    assert out.shape == (3, 20, 24)
    direct = F.conv2d(img[None, None], bank[:, None])[0]  # valid positions, no padding
    assert torch.allclose(out[:, 4:-4, 4:-4], direct, atol=1e-5)
    assert torch.allclose(filter_image(img, bank[1]), out[1])
    with pytest.raises(ValueError, match="grey image"):
        filter_image(torch.rand(3, 20, 24), bank)


def test_orientation_map_finds_the_grating_orientation():
    thetas = orientations(8)
    bank = gabor_bank(thetas, zero_mean=True)
    for t in (0, 3, 5):
        img = 0.5 + 0.5 * grating(40, thetas[t], 4.0)
        theta_map, strength = orientation_map(filter_image(img, bank).abs(), thetas)
        inner = theta_map[8:-8, 8:-8]
        assert float((inner == thetas[t]).float().mean()) > 0.95
        assert strength.shape == (40, 40) and float(strength.min()) >= 0
    with pytest.raises(ValueError, match="T = 8"):
        orientation_map(torch.rand(3, 5, 5), thetas)
    fig = plot_orientation_map(img, theta_map, strength, title="grating")
    assert len(fig.axes) == 3  # photo, map, colour bar
