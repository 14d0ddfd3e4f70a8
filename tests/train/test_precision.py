"""Mixed precision: which format is chosen, and that each path computes what it should."""
import pytest
import torch
from torch import nn

from cnnbook.data import TensorLoader
from cnnbook.train import fit
from cnnbook.train.precision import Precision, resolve_precision


def test_resolve_on_cpu():
    assert resolve_precision("fp32", "cpu").dtype is None
    assert resolve_precision("auto", "cpu").name == "fp32"   # bf16 conv training is no faster here
    bf16 = resolve_precision("BF16", "cpu")
    assert bf16.name == "bf16" and bf16.dtype is torch.bfloat16 and bf16.scaler is None
    with pytest.raises(ValueError, match="fp16.*needs a CUDA GPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("half", "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resolve_on_cuda():
    fp16 = resolve_precision("fp16", "cuda")
    assert fp16.dtype is torch.float16 and isinstance(fp16.scaler, torch.amp.GradScaler)
    assert resolve_precision("auto", "cuda").name in ("bf16", "fp16")


class _Recorder(nn.Module):
    """A linear classifier that notes the dtype its matrix multiply ran in."""

    def __init__(self):
        super().__init__()
        self.flat, self.fc, self.dtypes = nn.Flatten(), nn.Linear(16, 3), []

    def forward(self, x):
        out = self.fc(self.flat(x))
        self.dtypes.append(out.dtype)
        return out


def _loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 4, 4), generator=g, dtype=torch.uint8)
    return TensorLoader(x, torch.arange(64) % 3, 16, device="cpu")


def test_bf16_autocast_on_cpu_runs_the_forward_in_bfloat16_and_keeps_fp32_weights(results_dir):
    model = _Recorder()
    result = fit(model, _loader(), epochs=1, lr=0.1, precision="bf16", device="cpu",
                 progress=False, record=False)
    assert set(model.dtypes) == {torch.bfloat16}
    assert model.fc.weight.dtype is torch.float32          # master weights stay fp32
    assert result.record["precision"] == "bf16"
    model = _Recorder()
    fit(model, _loader(), epochs=1, lr=0.1, device="cpu", progress=False, record=False)
    assert set(model.dtypes) == {torch.float32}


def test_bf16_step_is_close_to_fp32_step(results_dir):
    torch.manual_seed(0)
    a = _Recorder()
    b = _Recorder()
    b.load_state_dict(a.state_dict())
    fit(a, _loader(), epochs=1, lr=0.1, device="cpu", progress=False, record=False)
    fit(b, _loader(), epochs=1, lr=0.1, precision="bf16", device="cpu", progress=False, record=False)
    assert not torch.equal(a.fc.weight, b.fc.weight)        # bf16 really did something else
    assert torch.allclose(a.fc.weight, b.fc.weight, atol=2e-2)


def test_scaler_path_gives_the_plain_update():
    """The GradScaler path (fp16 on CUDA) exercised on the CPU with a CPU scaler: scaling by a
    power of two and unscaling is exact, so the step equals the unscaled one."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    plain, scaled = nn.Linear(5, 3), nn.Linear(5, 3)
    scaled.load_state_dict(plain.state_dict())
    steps = []
    for model, amp in ((plain, Precision("fp32", "cpu")),
                       (scaled, Precision("fp16", "cpu", None, torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)))):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        with amp.autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        amp.backward(loss)
        if amp.scaler is not None:
            assert torch.allclose(model.weight.grad / 2 ** 10, steps[0][1], atol=1e-6)
        amp.unscale(opt)
        grad = model.weight.grad.clone()
        amp.step(opt)
        steps.append((model.weight.detach().clone(), grad))
    assert torch.equal(steps[0][1], steps[1][1]) and torch.equal(steps[0][0], steps[1][0])
