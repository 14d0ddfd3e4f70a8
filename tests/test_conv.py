import itertools

import pytest
import torch
import torch.nn.functional as F
from matplotlib.colors import to_hex
from torch import nn

from cnnbook.conv import (KERNEL_PRESETS, PADDING_MODES, ConvGeometry, apply_kernel,
                          conv_output_size, draw_conv_arithmetic, format_kernel,
                          kernel_presets, pad_image, parse_kernel, plot_kernel_result,
                          preset_kernel, same_padding)


def test_output_size_formula_matches_pytorch_on_a_grid():
    checked = refused = 0
    for n, k, s, p, d in itertools.product(range(1, 9), range(1, 6), range(1, 4), range(3),
                                           range(1, 4)):
        x, w = torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k)
        if d * (k - 1) + 1 > n + 2 * p:
            with pytest.raises(ValueError, match="empty"):
                conv_output_size(n, k, s, p, d)
            if refused % 25 == 0:  # PyTorch refuses too (a sample: its errors are slow)
                with pytest.raises(RuntimeError):
                    F.conv2d(x, w, stride=s, padding=p, dilation=d)
            refused += 1
            continue
        expected = F.conv2d(x, w, stride=s, padding=p, dilation=d).shape[-1]
        assert conv_output_size(n, k, s, p, d) == expected, (n, k, s, p, d)
        checked += 1
    assert checked > 500 and refused > 100


def test_output_size_rejects_nonsense():
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(8, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        conv_output_size(8, 3, padding=-1)
    with pytest.raises(ValueError, match="whole number"):
        conv_output_size(8.5, 3)


@pytest.mark.parametrize("k,d", [(1, 1), (3, 1), (5, 1), (3, 2), (7, 3), (2, 2)])
def test_same_padding_keeps_the_size(k, d):
    p = same_padding(k, d)
    assert conv_output_size(17, k, 1, p, d) == 17
    assert p == d * (k - 1) // 2


def test_same_padding_refuses_an_even_span():
    with pytest.raises(ValueError, match="even"):
        same_padding(4)


def test_presets_sum_as_their_job_demands():
    zero_sum = {"horizontal edge", "vertical edge", "diagonal edge", "anti-diagonal edge",
                "sobel x", "sobel y", "laplacian"}
    one_sum = set(KERNEL_PRESETS) - zero_sum
    assert {"identity", "box blur 3x3", "sharpen", "emboss"} <= one_sum
    for name in KERNEL_PRESETS:
        total = float(preset_kernel(name).sum())
        assert total == pytest.approx(0.0 if name in zero_sum else 1.0, abs=1e-6), name
    table = kernel_presets()
    assert list(table.index) == list(KERNEL_PRESETS)
    assert set(table.columns) == {"size", "sum", "what it does"}


def test_classic_kernels_are_the_textbook_ones():
    h = preset_kernel("horizontal edge")
    assert h.tolist() == [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]
    assert torch.equal(preset_kernel("vertical edge"), h.T)
    assert torch.allclose(preset_kernel("box blur 3x3"), torch.full((3, 3), 1 / 9))
    # the diagonal kernels are each other's mirror image
    assert torch.equal(preset_kernel("anti-diagonal edge"), -torch.flip(preset_kernel("diagonal edge"), [0]))
    with pytest.raises(ValueError, match="unknown kernel preset"):
        preset_kernel("nope")


def test_presets_do_what_they_say_on_images():
    flat = torch.full((12, 12), 0.4)
    ramp = torch.arange(12.0).repeat(12, 1) / 12  # brighter to the right
    for name in ("horizontal edge", "vertical edge", "laplacian", "sobel x"):
        assert apply_kernel(flat, preset_kernel(name)).abs().max() < 1e-6  # no response to flat
    for name in ("box blur 3x3", "gaussian blur 3x3", "sharpen", "identity"):
        assert torch.allclose(apply_kernel(flat, preset_kernel(name)), torch.full((10, 10), 0.4))
    assert (apply_kernel(ramp, preset_kernel("vertical edge")) > 0).all()
    assert apply_kernel(ramp, preset_kernel("horizontal edge")).abs().max() < 1e-6
    x = torch.rand(9, 9)
    assert torch.allclose(apply_kernel(x, preset_kernel("identity"), padding=1), x)


def test_parse_kernel_accepts_the_usual_spellings():
    expected = torch.tensor([[1.0, 0.0], [-0.5, 2.0]])
    for text in ("1 0\n-0.5 2", "1, 0; -0.5, 2", "[[1, 0], [-0.5, 2]]", "  1 0 \n\n -1/2 2 \n"):
        assert torch.equal(parse_kernel(text), expected), text
    assert parse_kernel("1/9 1/9 1/9")[0].tolist() == pytest.approx([1 / 9] * 3)
    assert parse_kernel("1e-1").item() == pytest.approx(0.1)


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("   \n ", "empty"),
    ("1 2 3\n4 5", "same number of entries: row 1 has 3, row 2 has 2"),
    ("1 x 3", "row 1, entry 2: 'x' is not a number"),
    ("1 2\n3 1/0", "row 2, entry 2: '1/0' divides by zero"),
    ("nan", "not a number"),
    ("1e999", "finite"),
    ("\n".join(["1 " * 16] * 16), "larger than"),
])
def test_parse_kernel_errors_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_kernel(text)
    with pytest.raises(ValueError):
        parse_kernel(None)


def test_format_and_parse_round_trip_every_preset():
    for name in KERNEL_PRESETS:
        k = preset_kernel(name)
        assert torch.allclose(parse_kernel(format_kernel(k)), k, atol=1e-7), name
    assert format_kernel(preset_kernel("box blur 3x3")).split("\n")[0].split() == ["1/9"] * 3
    assert "0.1235" in format_kernel([[0.123456]])
    with pytest.raises(ValueError, match="2-D"):
        format_kernel(torch.zeros(3))


@pytest.mark.parametrize("mode", list(PADDING_MODES))
def test_apply_kernel_is_conv2d_with_that_padding_mode(mode):
    torch.manual_seed(0)
    x, k = torch.rand(3, 11, 13), torch.randn(3, 3)
    conv = nn.Conv2d(3, 3, 3, padding=2, padding_mode=mode, stride=2, dilation=2, groups=3,
                     bias=False)
    with torch.no_grad():
        conv.weight.copy_(k.expand(3, 1, 3, 3))
        expected = conv(x[None])[0]
    got = apply_kernel(x, k, stride=2, padding=2, padding_mode=mode, dilation=2)
    assert torch.allclose(got, expected, atol=1e-5)
    grey = apply_kernel(x[0], k, padding=1, padding_mode=mode)
    assert grey.shape == (11, 13)
    assert torch.allclose(pad_image(x, 2, mode), F.pad(x[None], (2,) * 4, mode=PADDING_MODES[mode])[0])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (2, 2), (4, 3), (1, 6)])
def test_same_padding_of_apply_kernel_matches_pytorch(shape):
    torch.manual_seed(1)
    x, k = torch.rand(10, 12), torch.randn(*shape)
    got = apply_kernel(x, k, padding="same")
    assert got.shape == x.shape
    assert torch.allclose(got, F.conv2d(x[None, None], k[None, None], padding="same")[0, 0], atol=1e-5)


def test_apply_kernel_errors():
    x = torch.rand(6, 6)
    with pytest.raises(ValueError, match="empty"):
        apply_kernel(x, torch.ones(7, 7))
    with pytest.raises(ValueError, match="unknown padding mode"):
        apply_kernel(x, torch.ones(3, 3), padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match="reflect padding"):
        apply_kernel(x, torch.ones(3, 3), padding=6, padding_mode="reflect")
    with pytest.raises(ValueError, match="stride 1"):
        apply_kernel(x, torch.ones(3, 3), padding="same", stride=2)
    with pytest.raises(ValueError, match="2-D kernel"):
        apply_kernel(x, torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match="image"):
        apply_kernel(torch.rand(1, 1, 6, 6), torch.ones(3, 3))


def _conv_by_taps(x: torch.Tensor, w: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    out = torch.zeros(g.out_size, g.out_size)
    weights = w.flatten().tolist()
    for i in range(g.out_size):
        for j in range(g.out_size):
            out[i, j] = sum(wt * (0.0 if g.in_padding(r, c) else float(x[r, c]))
                            for wt, (r, c) in zip(weights, g.taps(i, j)))
    return out


@pytest.mark.parametrize("n,k,s,p,d", [(5, 3, 1, 0, 1), (5, 3, 2, 1, 1), (7, 3, 1, 0, 2),
                                       (6, 2, 3, 1, 1), (8, 3, 2, 2, 2), (4, 1, 1, 0, 1)])
def test_window_taps_reproduce_conv2d(n, k, s, p, d):
    torch.manual_seed(n * 100 + k)
    x, w = torch.randn(n, n), torch.randn(k, k)
    g = ConvGeometry(n, k, s, p, d)
    assert len(g.taps(0, 0)) == k * k and g.span == d * (k - 1) + 1
    assert g.taps(0, 0)[0] == (-p, -p) and g.taps(0, 0)[-1] == (-p + g.span - 1,) * 2
    expected = F.conv2d(x[None, None], w[None, None], stride=s, padding=p, dilation=d)[0, 0]
    assert torch.allclose(_conv_by_taps(x, w, g), expected, atol=1e-5)


@pytest.mark.parametrize("n,k,s,p,d", [(6, 3, 2, 0, 1), (7, 2, 3, 1, 1), (5, 3, 2, 1, 1),
                                       (9, 3, 4, 0, 2)])
def test_unused_rows_get_no_gradient(n, k, s, p, d):
    """The floor in the formula drops the last ``unused`` padded rows: no window reads them."""
    g = ConvGeometry(n, k, s, p, d)
    xp = torch.randn(1, 1, g.padded_size, g.padded_size, requires_grad=True)
    F.conv2d(xp, torch.ones(1, 1, k, k), stride=s, dilation=d).sum().backward()
    touched = xp.grad[0, 0].abs().sum(1) > 0
    last = int(torch.nonzero(touched).max())
    assert g.padded_size - 1 - last == g.unused


def test_geometry_rejects_positions_and_settings_outside_range():
    g = ConvGeometry(5, 3, 2, 1)
    assert g.out_size == 3 and g.padded_size == 7 and g.unused == 0
    with pytest.raises(ValueError, match="outside"):
        g.taps(3, 0)
    with pytest.raises(ValueError, match="empty"):
        ConvGeometry(3, 3, dilation=2)


def test_drawing_marks_every_tap_once_per_position():
    g = ConvGeometry(7, 3, 2, 1, 2)
    fig = draw_conv_arithmetic(g, positions=[(0, 0), (1, 2)])
    assert len(fig.axes) == 2
    dark = {"#1f4e79", "#7f9fbf"}  # kernel taps in the input, in the padding
    for ax in fig.axes:
        faces = [to_hex(p.get_facecolor()) for p in ax.patches if p.get_fill()]
        assert sum(f in dark for f in faces) == 9
        assert sum(f == "#2ca02c" for f in faces) == 1  # the output position
        assert len(faces) == g.padded_size ** 2 + g.out_size ** 2
    assert len(draw_conv_arithmetic(ConvGeometry(1, 1)).axes) == 1  # one position only


def test_kernel_result_picture():
    x = torch.rand(16, 16)
    fig = plot_kernel_result(x, preset_kernel("vertical edge"), apply_kernel(x, preset_kernel("vertical edge")))
    assert [ax.get_title() for ax in fig.axes] == ["input", "kernel", "feature map"]
    assert fig.axes[2].images[0].get_cmap().name == "RdBu_r"  # signed response of an edge kernel
    fig = plot_kernel_result(x, preset_kernel("box blur 3x3"), apply_kernel(x, preset_kernel("box blur 3x3")))
    assert fig.axes[2].images[0].get_cmap().name == "gray"
    rgb = torch.rand(3, 16, 16)
    fig = plot_kernel_result(rgb, preset_kernel("sharpen"), apply_kernel(rgb, preset_kernel("sharpen")))
    assert fig.axes[2].images[0].get_array().shape == (14, 14, 3)


def test_parse_kernel_rejects_a_decimal_comma_and_overflowing_weights():
    from cnnbook.conv import parse_kernel

    with pytest.raises(ValueError, match="decimal comma; write 0.5"):
        parse_kernel("0,5 0,5")
    assert parse_kernel("1, 0, -1").tolist() == [[1.0, 0.0, -1.0]]  # commas between entries
    assert parse_kernel("0.5 0.5").tolist() == [[0.5, 0.5]]
    with pytest.raises(ValueError, match="too large"):
        parse_kernel("1e39 0")
