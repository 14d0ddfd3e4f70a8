"""The fake answers a hidden test must reject, built from the teacher's solution cells.

A fake is the solution cell's own code followed by an ``epilogue`` that replaces what the
cell defined (its top-level functions and variables):

- ``hardcoded``: each function returns, whatever it is asked, the answer to its first call
  (the visible value typed in);
- ``lookup``: each function answers correctly the calls made outside a test cell's hidden
  block (the visible asserts) and wrongly the others (a lookup table of the visible inputs);
- ``always_equal``: every function and variable is an object whose ``==`` always says yes
  (and ``<``, ``abs``, ``-`` and attribute access play along);
- ``allclose``: ``torch.allclose``, ``torch.equal``, ``torch.isclose`` and ``math.isclose``
  patched to say yes, and every answer slightly wrong;
- ``forbidden`` (the exercises in ``FORBIDDEN``): a solution that calls the function the task
  forbids.

The fakes run inside the kernel: ``HELPERS`` defines them there, and each fake records in
the file ``_FK_LOG`` (one JSON line ``[grade_id, "altered"]``) whenever it actually altered
an answer; a fake that altered nothing is the solution itself and proves nothing.

Used by ``tests/test_cheats.py`` (whole fake submissions through nbgrader's autograde) and
``cnnbook.grading.onekernel`` (every chapter in one kernel). Teacher-only: the student
edition leaves this module out (it spells out the forbidden calls).
"""
from __future__ import annotations

import ast
import copy

FAKES = ("hardcoded", "lookup", "always_equal", "allclose")

# Where a task forbids a function: a solution that calls it (replaces the student's answer).
FORBIDDEN = {
    "ex-02-im2col-general": "def im2col_general(X, kernel_size, stride=1, padding=0, dilation=1):\n"
                            "    return F.unfold(X, kernel_size, dilation=dilation, padding=padding, stride=stride)",
    "ex-04-manual-grads": "def manual_grads(X, y, K, W):\n"
                          "    K, W = K.clone().requires_grad_(True), W.clone().requires_grad_(True)\n"
                          "    F.cross_entropy(F.relu(F.conv2d(X, K)).mean(dim=(2, 3)) @ W.T, y).backward()\n"
                          "    return K.grad, W.grad",
    "ex-07-block-params": "def vgg_block_params(num_convs, in_channels, out_channels):\n"
                          "    return count_params(vgg_lib.vgg_block(num_convs, in_channels, out_channels))",
    # "from the formula, without building it": the counting exercises, answered by building
    # the network and asking the counter (or running it) instead
    "ex-05-lenet-macs": "from cnnbook.models.lenet import lenet5 as _lenet5\n"
                        "from cnnbook.profiling import count_flops as _count_flops\n\n"
                        "def lenet_macs(image_size):\n"
                        "    return _count_flops(_lenet5(image_size=image_size), (1, 1, image_size, image_size)) // 2",
    "ex-06-alexnet-params": "from cnnbook.models.alexnet import alexnet_2012 as _ax\n"
                            "from cnnbook.profiling import count_params as _cp\n\n"
                            "def alexnet_params(two_towers=True, num_classes=1000):\n"
                            "    with torch.device('meta'):\n"
                            "        return _cp(_ax(two_towers=two_towers, num_classes=num_classes))",
    "ex-08-block-params": "from cnnbook.models.nin import nin_block as _nb\n"
                          "from cnnbook.profiling import count_params as _cp\n\n"
                          "def nin_block_params(in_channels, out_channels, kernel_size):\n"
                          "    return _cp(_nb(in_channels, out_channels, kernel_size))",
    "ex-08-map-side": "from cnnbook.models.nin import nin_fashion as _nf\n\n"
                      "def class_map_side(image_size, small_input=False):\n"
                      "    net = _nf(width_mult=0.125, small_input=small_input).eval()\n"
                      "    try:\n"
                      "        return int(net[:-2](torch.zeros(1, 1, image_size, image_size)).shape[-1])\n"
                      "    except RuntimeError:\n"
                      "        return 0",
    "ex-09-inception-cost": "from cnnbook.models.googlenet import Inception as _Inc\n"
                            "from cnnbook.profiling import count_macs as _cm, count_params as _cp\n\n"
                            "def inception_params(in_channels, c1, c2, c3, c4, k=5):\n"
                            "    return _cp(_Inc(in_channels, c1, c2, c3, c4, branch3_kernel=k))\n\n"
                            "def inception_macs(size, in_channels, c1, c2, c3, c4, k=5):\n"
                            "    return _cm(_Inc(in_channels, c1, c2, c3, c4, branch3_kernel=k), (1, in_channels, size, size))",
    "ex-09-shapes": "from cnnbook.models.googlenet import googlenet_fashion as _gf\n\n"
                    "def googlenet_shapes(size):\n"
                    "    with torch.device('meta'):\n"
                    "        m, x, out = _gf().eval(), torch.zeros(1, 1, size, size), {}\n"
                    "        for stage in m.stage_names:\n"
                    "            x = getattr(m, stage)(x)\n"
                    "            out[stage] = tuple(x.shape[1:])\n"
                    "    return out",
    "ex-11-residual-params": "from cnnbook.models.resnet import Residual as _Res\n"
                             "from cnnbook.profiling import count_params as _cp\n\n"
                             "def residual_params(in_channels, channels, stride=1):\n"
                             "    return _cp(_Res(in_channels, channels, stride))",
    "ex-12-dense-channels": "from cnnbook.models.densenet import DenseNet as _DN\n\n"
                            "def dense_channels(init_channels, block_config, growth_rate, compression=0.5):\n"
                            "    net = _DN(block_config, growth_rate=growth_rate, init_channels=init_channels,\n"
                            "              compression=compression)\n"
                            "    return [p.out_channels if n.startswith('block') else p.conv.out_channels\n"
                            "            for n, p in net.named_children() if n.startswith(('block', 'trans'))]",
    "ex-12-layer-params": "from cnnbook.models.densenet import dense_layer as _dl\n"
                          "from cnnbook.profiling import count_params as _cp\n\n"
                          "def dense_layer_params(in_channels, growth_rate, bottleneck=None):\n"
                          "    return _cp(_dl(in_channels, growth_rate, bottleneck))",
    "ex-13-separable-params": "from cnnbook.models.mobilenet import DepthwiseSeparableConv as _DSC\n"
                              "from cnnbook.profiling import count_params as _cp\n\n"
                              "def separable_params(in_channels, out_channels, kernel_size=3):\n"
                              "    return _cp(_DSC(in_channels, out_channels, kernel_size=kernel_size))",
    "ex-13-ir-macs": "from cnnbook.models.mobilenet import InvertedResidual as _IR\n"
                     "from cnnbook.profiling import count_macs as _cm\n\n"
                     "def inverted_residual_macs(in_channels, out_channels, expansion, stride, size, kernel_size=3):\n"
                     "    blk = _IR(in_channels, out_channels, stride, expanded=expansion * in_channels, kernel_size=kernel_size)\n"
                     "    return _cm(blk, (1, in_channels, size, size))",
    "ex-15-grayscale": "from torchvision.transforms.v2.functional import rgb_to_grayscale as _grey\n\n"
                       "def random_grayscale(x, generator, p=0.1):\n"
                       "    chosen = torch.rand(len(x), generator=generator) < p\n"
                       "    return torch.where(chosen.view(-1, 1, 1, 1), _grey(x, num_output_channels=3), x)",
    "ex-20-cam": "from captum.attr import LayerGradCam as _LGC\n\n"
                 "def cam_from(A, dA):\n"
                 "    class _Score(torch.nn.Module):   # a score whose gradient at A is dA\n"
                 "        def __init__(self):\n"
                 "            super().__init__()\n"
                 "            self.layer = torch.nn.Identity()\n"
                 "        def forward(self, a):\n"
                 "            return (self.layer(a) * dA).sum(dim=(1, 2, 3))[:, None]\n"
                 "    net = _Score()\n"
                 "    return _LGC(net, net.layer).attribute(A, target=0, relu_attributions=True)[:, 0]",
    "ex-20-ig": "def my_integrated_gradients(model, x, target, steps):\n"
                "    return IntegratedGradients(model).attribute(x, target=target, n_steps=steps,\n"
                "                                                method='riemann_middle')",
    "ex-20-knn": "from sklearn.neighbors import NearestNeighbors as _NN\n\n"
                 "def same_label_share(features, labels, k):\n"
                 "    f = features.detach().cpu().numpy()\n"
                 "    idx = _NN(n_neighbors=k + 1).fit(f).kneighbors(f, return_distance=False)[:, 1:]\n"
                 "    return float((labels[torch.as_tensor(idx)] == labels[:, None]).double().mean())",
    "ex-22-dynamic": "from cnnbook.deploy.export import to_onnx as _to_onnx\n\n"
                     "def export_any_batch(model, path):\n"
                     "    return _to_onnx(model, torch.randn(2, 3, 32, 32), path)",
    # the library's own function, imported under its name at the top of the cell (an alias
    # that replacing the module's attribute would not reach)
    "ex-18-clip": "from torch.nn.utils import clip_grad_norm_\n\n"
                  "def clip_total_norm(grads, max_norm):\n"
                  "    params = [torch.zeros_like(g, requires_grad=True) for g in grads]\n"
                  "    for p, g in zip(params, grads):\n"
                  "        p.grad = g.clone()\n"
                  "    total = clip_grad_norm_(params, max_norm)\n"
                  "    return [p.grad for p in params], float(total)",
    "ex-17-group-norm": "from torch.nn.functional import group_norm\n\n"
                        "def my_group_norm(x, groups, eps=1e-5):\n"
                        "    return group_norm(x, groups, eps=eps)",
    "ex-21-fold-bn": "from torch.nn.utils.fusion import fuse_conv_bn_weights\n\n"
                     "def fold_bn(weight, bias, gamma, beta, mean, var, eps=1e-5):\n"
                     "    w, b = fuse_conv_bn_weights(weight, bias, mean, var, eps, gamma, beta)\n"
                     "    return w.detach(), b.detach()",
    "ex-08-conv1x1": "def conv1x1(x, weight, bias):\n    return F.conv2d(x, weight, bias)",
    "ex-09-label-smoothing": "def smoothed_cross_entropy(logits, y, eps):\n"
                             "    return nn.functional.cross_entropy(logits, y, label_smoothing=eps)",
    "ex-10-layer-norm": "def layer_norm(X, eps=1e-5):\n    return F.layer_norm(X, X.shape[1:], eps=eps)",
    "ex-13-hard-swish": "def hard_sigmoid(x):\n    return F.hardsigmoid(x)\n\n"
                       "def hard_swish(x):\n    return F.hardswish(x)",
    "ex-06-lrn": "def local_response_norm(a, n=5, alpha=1e-4, beta=0.75, k=2.0):\n"
                 "    return torch.nn.functional.local_response_norm(a, n, alpha=n * alpha, beta=beta, k=k)",
    "ex-21-kd-loss": "from cnnbook.deploy.distill import distillation_loss\n\n"
                     "def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.7):\n"
                     "    return distillation_loss(student_logits, teacher_logits, labels, T, alpha)",
    "ex-21-qparams": "from cnnbook.deploy.quantize import qparams\n\n"
                     "def affine_qparams(x, bits=8):\n"
                     "    scale, zero = qparams(x, bits, symmetric=False)\n"
                     "    return float(scale), int(zero)",
    "ex-23-patchify": "def my_patchify(images, p):\n"
                      "    return torch.nn.functional.unfold(images, kernel_size=p, stride=p).transpose(1, 2)",
    "ex-23-attention": "def my_attention(q, k, v):\n"
                       "    w = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)\n"
                       "    return torch.nn.functional.scaled_dot_product_attention(q, k, v), w",
    "ex-23-rollout": "def my_rollout(attentions):\n"
                     "    from cnnbook.interpret.rollout import attention_rollout\n"
                     "    return attention_rollout(attentions)",
}

# Run inside the submission: the fakes. ``_fk_log`` records, per exercise, whether a fake
# altered an answer (else the fake is the solution itself and proves nothing).
HELPERS = r'''
import copy as _fk_copy, json as _fk_json, linecache as _fk_lc, math as _fk_math, sys as _fk_sys
import torch as _fk_torch
_FK_LOG = {log!r}
_FK_MARK = "### BEGIN " + "HIDDEN TESTS"   # spelled in two parts: this cell is no test cell


def _fk_log(gid, kind):
    with open(_FK_LOG, "a") as f:
        f.write(_fk_json.dumps([gid, kind]) + "\n")


class _FkEq:
    """Equal to everything; plays along with the operations visible asserts use."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __bool__(self): return True
    def __hash__(self): return 0
    def __abs__(self): return self
    def __neg__(self): return self
    def __add__(self, other): return self
    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __add__
    __floordiv__ = __mod__ = __pow__ = __matmul__ = __rmatmul__ = __add__
    def __call__(self, *a, **k): return self
    def __getitem__(self, key): return self
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self
    def __iter__(self): return iter(())
    def __len__(self): return 0
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __index__(self): return 0
    def __format__(self, spec): return "0"
    def __repr__(self): return "AlwaysEqual()"


def _fk_perturb(v):
    """A slightly wrong copy of v, and whether it differs."""
    if isinstance(v, _fk_torch.Tensor):
        if v.dtype == _fk_torch.bool:
            return ~v, v.numel() > 0
        if v.is_floating_point():
            return v.detach() * 1.01 + 0.01, v.numel() > 0
        return v + 1, v.numel() > 0
    if type(v) is bool:
        return (not v), True
    if type(v) is int:
        return v + 1, True
    if type(v) is float:
        return v * 1.01 + 0.01, True
    if type(v) in (tuple, list):
        out = [_fk_perturb(x) for x in v]
        return type(v)(x for x, _ in out), any(c for _, c in out)
    if type(v) is dict:
        out = {k: _fk_perturb(x) for k, x in v.items()}
        return {k: x for k, (x, _) in out.items()}, any(c for _, c in out.values())
    if type(v) is str:
        return v + " (fake)", True
    if v is None:
        return 0, True
    return v, False


def _fk_in_hidden():
    """True when the call comes from a line inside a test cell's hidden block."""
    f = _fk_sys._getframe(2)
    while f is not None:
        lines = _fk_lc.getlines(f.f_code.co_filename)
        marks = [i + 1 for i, line in enumerate(lines) if _FK_MARK in line]
        if marks:
            return f.f_lineno > marks[0]
        f = f.f_back
    return False


def _fk_constant(gid, fn):
    memo = []
    def fake(*args, **kwargs):
        if not memo:
            memo.append((repr((args, kwargs)), fn(*args, **kwargs)))
        elif repr((args, kwargs)) != memo[0][0]:
            _fk_log(gid, "altered")
        return memo[0][1]
    return fake


def _fk_lookup(gid, fn):
    def fake(*args, **kwargs):
        out = fn(*args, **kwargs)
        if _fk_in_hidden():
            out, changed = _fk_perturb(out)
            if changed:
                _fk_log(gid, "altered")
        return out
    return fake


def _fk_wrong(gid, fn):
    def fake(*args, **kwargs):
        out, changed = _fk_perturb(fn(*args, **kwargs))
        if changed:
            _fk_log(gid, "altered")
        return out
    return fake


def _fk_equal(gid, fn):
    def fake(*args, **kwargs):
        _fk_log(gid, "altered")
        return _FkEq()
    return fake


_FK_SAVED = (_fk_torch.allclose, _fk_torch.equal, _fk_torch.isclose, _fk_math.isclose)


def _fk_restore_comparisons():
    _fk_torch.allclose, _fk_torch.equal, _fk_torch.isclose, _fk_math.isclose = _FK_SAVED


def _fk_patch_comparisons():
    import math
    import torch
    yes = lambda *a, **k: True  # noqa: E731
    torch.allclose = torch.equal = yes
    torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
    math.isclose = yes
'''


def defined_names(source: str) -> tuple[list[str], list[str]]:
    """(functions, variables) a solution cell defines at top level (classes are left alone)."""
    tree = ast.parse(source)
    funcs, names = [], []

    def visit(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and n.id not in names:
                            names.append(n.id)
            elif isinstance(node, (ast.With, ast.If, ast.For, ast.Try)):
                visit(node.body)
    visit(tree.body)
    return funcs, [n for n in names if n not in funcs]


def epilogue(kind: str, gid: str, source: str) -> str:
    """Code run after the solution cell's own code: replaces what it defined by the fake."""
    funcs, names = defined_names(source)
    lines = [f"# --- fake: {kind}"]
    if kind == "allclose":
        lines.append("_fk_patch_comparisons()")
    for f in funcs:
        wrap = {"hardcoded": "_fk_constant", "lookup": "_fk_lookup", "always_equal": "_fk_equal",
                "allclose": "_fk_wrong"}[kind]
        lines.append(f"{f} = {wrap}({gid!r}, {f})")
    for n in names:
        if kind == "always_equal":
            lines += [f"{n} = _FkEq()", f"_fk_log({gid!r}, 'altered')"]
        elif kind == "allclose":
            lines += [f"{n}, _fk_changed = _fk_perturb({n})",
                      f"if _fk_changed: _fk_log({gid!r}, 'altered')"]
    return "\n".join(lines)


def fake_submission(teacher, kind: str, log) -> "nbformat.NotebookNode":
    """A copy of the teacher's notebook where every solution cell holds the fake ``kind``."""
    nb = copy.deepcopy(teacher)
    first = True
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution") or cell.cell_type != "code":
            continue
        gid = meta["grade_id"]
        source = cell_source(cell)
        prefix = helpers(log) + "\n" if first else ""
        first = False
        cell.source = prefix + (fake_cell(kind, gid, source) or source)
    return nb


def fake_epilogue(kind: str, gid: str, source: str) -> str | None:
    """What the fake ``kind`` runs after solution cell ``gid``'s own code (``HELPERS`` aside).

    None when the fake cannot alter anything: the cell defines no function and no variable
    (an exercise that builds a class, or prints), or ``forbidden`` where the task forbids
    nothing. Such a fake is the solution itself, so it need not be run.
    """
    if kind == "forbidden":
        return f"{FORBIDDEN[gid]}\n_fk_log({gid!r}, 'altered')\n" if gid in FORBIDDEN else None
    if kind not in FAKES:
        raise ValueError(f"unknown fake {kind!r}; expected one of {FAKES + ('forbidden',)}")
    funcs, names = defined_names(source)
    if not funcs and not names:
        return None
    return epilogue(kind, gid, source) + "\n"


def fake_cell(kind: str, gid: str, source: str) -> str | None:
    """The solution cell ``gid`` under the fake ``kind``: its code, then ``fake_epilogue``."""
    tail = fake_epilogue(kind, gid, source)
    return None if tail is None else f"{source}\n\n{tail}"


def kinds_for(grade_ids) -> list[str]:
    """The fakes that apply to a chapter with these exercises (``forbidden`` where listed)."""
    return [*FAKES, *(["forbidden"] if any(g in FORBIDDEN for g in grade_ids) else [])]


def helpers(log) -> str:
    """``HELPERS`` writing their record to the file ``log``."""
    return HELPERS.replace("{log!r}", repr(str(log)))


def cell_source(cell) -> str:
    return "".join(cell.source) if isinstance(cell.source, list) else cell.source
