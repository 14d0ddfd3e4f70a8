# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 04 · Losses, gradients and backpropagation
#
# Chapters [02](02_convolution_math.ipynb) and [03](03_pooling_activations.ipynb) built the forward pass of a CNN: convolutions, activations, pooling.
# A network with random kernels computes nonsense; what turns it into a digit reader is
# *learning*: a loss that says how wrong the output is, the gradient of that loss with
# respect to every weight, and small steps downhill. This chapter writes each of these
# pieces by hand, checks every one against PyTorch's autograd, and then uses them to
# compare a CNN with a fully connected network on MNIST.
#
# **What you will learn**
#
# - the two losses of this course, mean squared error and cross-entropy, in scalar and
#   matrix form, and why softmax plus cross-entropy has the gradient $p - y$;
# - gradient descent on a problem small enough to draw, and what the learning rate does;
# - the backward pass of a convolution: the kernel gradient is a cross-correlation of the
#   input with the output gradient, the input gradient a full convolution with the
#   flipped kernel;
# - the backward pass of max pooling (route to the arg-max) and average pooling (spread);
# - how to check any gradient with finite differences;
# - what weight sharing buys on MNIST: parameters, accuracy, and translation
#   equivariance, measured rather than asserted.

# %%
import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import make_grid

import cnnbook
from cnnbook import viz
from cnnbook.backprop import (avg_pool2d_backward, conv2d_backward, max_pool2d_backward,
                              numerical_grad, relative_error)
from cnnbook.equivariance import equivariance_error, representation_change, shifted_accuracy
from cnnbook.inspect import capture
from cnnbook.models.small import mnist_cnn, mnist_mlp
from cnnbook.profiling import count_params
from cnnbook.summary import shape_table, show_source
from cnnbook.train import predict

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # epochs / lr / batch_size: the sources' MNIST recipe (SGD, lr 0.01, batch 64, 5
    # epochs), the same for the CNN and the MLP; limit / test_limit: class-balanced
    # subsets (None: all 60,000 / 10,000 images); gd_steps: steps of the toy descent;
    # shift_batches: test batches moved around in section 8 (None: the whole test set)
    "smoke": dict(epochs=1, lr=0.01, batch_size=64, limit=2_000, test_limit=1_000, gd_steps=40,
                  shift_batches=4),
    "cpu":   dict(epochs=5, lr=0.01, batch_size=64, limit=None, test_limit=None, gd_steps=40,
                  shift_batches=None),
    "full":  dict(epochs=5, lr=0.01, batch_size=64, limit=None, test_limit=None, gd_steps=40,
                  shift_batches=None),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# The two MNIST networks of section 7 are small, so the `cpu` profile can afford the
# sources' full recipe: all 60,000 training images at 28 px, 5 epochs, batch 64, on a
# 2-core CPU in a few minutes. `full` is the same; `smoke` trains one epoch on 2,000
# images just to run every cell.
#
# ## 1. A little history
#
# Gradient descent is old: Augustin-Louis Cauchy proposed in 1847 to solve systems of
# equations by repeatedly stepping against the gradient of a sum of squares, and the sum
# of squared errors itself goes back to Legendre (1805) and Gauss (1809). What took a
# long time was computing the gradient of a *deep* function cheaply. Seppo Linnainmaa
# described reverse-mode automatic differentiation in his 1970 master's thesis; Paul
# Werbos proposed applying it to neural networks in 1974; and Rumelhart, Hinton and
# Williams (1986) showed that this "backpropagation of errors" makes multi-layer
# networks learn useful internal representations. Three years later LeCun et al. (1989)
# backpropagated through convolutions with shared weights and read ZIP codes with the
# result ([chapter 05](05_lenet.ipynb)). Backpropagation is nothing more than the chain rule applied layer
# by layer from the loss back to the input, reusing every intermediate result once; the
# cost of the backward pass is a small multiple of the forward pass, whatever the number
# of weights. Every layer needs only one new piece of code: given the gradient of the
# loss with respect to its output, return the gradients with respect to its input and
# its parameters. Sections 4 to 6 write that piece for convolution and pooling.
#
# ## 2. Losses
#
# ### Mean squared error
#
# For regression, with targets $y_i$ and predictions $\hat y_i$, the squared error is
#
# $$E = \frac12 \sum_{i=1}^N (y_i - \hat y_i)^2 = \frac12 (Y - \hat Y)^\top (Y - \hat Y),$$
#
# the second form with the targets and predictions stacked into column vectors. The
# $\frac12$ cancels the 2 of the derivative: $\partial E / \partial \hat y_i = \hat y_i - y_i$.
# For a linear model $\hat Y = X w$ the chain rule gives the gradient in matrix form,
# $\nabla_w E = X^\top (X w - Y)$. Both forms, and the gradient, against autograd:

# %%
torch.manual_seed(0)
X_lin = torch.randn(5, 3)
Y_lin = torch.randn(5)
w_lin = torch.randn(3, requires_grad=True)
Y_hat = X_lin @ w_lin

E_scalar = 0.5 * sum((Y_lin[i] - Y_hat[i]) ** 2 for i in range(len(Y_lin)))
E_matrix = 0.5 * (Y_lin - Y_hat) @ (Y_lin - Y_hat)
E_matrix.backward()
grad_by_hand = X_lin.T @ (X_lin @ w_lin.detach() - Y_lin)
assert torch.allclose(E_scalar, E_matrix)
assert torch.allclose(w_lin.grad, grad_by_hand)
print(f"E = {E_matrix.item():.4f} in both forms; X^T (Xw - Y) = {grad_by_hand.numpy().round(4)}"
      f" = autograd's {w_lin.grad.numpy().round(4)}")

# %% [markdown]
# PyTorch's `nn.MSELoss` takes the *mean* instead of half the sum; the two differ by the
# constant factor $2/N$, which only rescales the learning rate.
#
# ### Softmax and cross-entropy
#
# For classification the network outputs one score (logit) $o_c$ per class, the softmax
# turns them into probabilities $\hat y_c = e^{o_c} / \sum_j e^{o_j}$, and the
# cross-entropy with the one-hot labels $y_{ic}$ is
#
# $$L = -\frac1N \sum_{i=1}^N \sum_{c=1}^C y_{ic} \log \hat y_{ic}
#     = -\frac1N \operatorname{sum}(Y \odot \log \hat Y).$$
#
# It is the negative log-likelihood of the labels: the average surprise of the model at
# the true classes. For one example, inserting the softmax,
# $\ell = \log \sum_j e^{o_j} - \sum_c y_c o_c$, and differentiating by $o_j$:
#
# $$\frac{\partial \ell}{\partial o_j} = \frac{e^{o_j}}{\sum_k e^{o_k}} - y_j = \hat y_j - y_j .$$
#
# The gradient of softmax-plus-cross-entropy with respect to the logits is *prediction
# minus target*, $P - Y$ (divided by $N$ for the mean): as simple as the squared error's.
# The code, with a softmax that subtracts each row's maximum first (it changes nothing
# mathematically but keeps `exp` from overflowing):

# %%
def softmax(O):
    """Row-wise softmax of logits O (N, C), stable for large logits."""
    E = torch.exp(O - O.max(dim=1, keepdim=True).values)
    return E / E.sum(dim=1, keepdim=True)


logits = torch.randn(4, 3, requires_grad=True)
labels = torch.tensor([0, 2, 1, 2])
Y = F.one_hot(labels, 3).float()
P = softmax(logits)
N, C = P.shape

L_scalar = -sum(Y[i, c] * torch.log(P[i, c]) for i in range(N) for c in range(C)) / N
L_matrix = -(Y * P.log()).sum() / N
L_torch = F.cross_entropy(logits, labels)   # takes logits and class indices
L_torch.backward()
grad_by_hand = (P - Y).detach() / N
assert torch.allclose(L_scalar, L_torch) and torch.allclose(L_matrix, L_torch)
assert torch.allclose(logits.grad, grad_by_hand)
print(f"L = {L_torch.item():.4f} (loops, matrix form and F.cross_entropy agree)")
print("(P - Y) / N =\n", grad_by_hand.numpy().round(4))

# %% [markdown]
# Each row of the gradient sums to zero: the true class's logit is pushed up by
# $1 - \hat y$, the others down by their probabilities. `F.cross_entropy` fuses the
# softmax and the logarithm (as `log_softmax`), which is why networks output logits and
# never apply a softmax before the loss: the separate computation overflows.

# %%
big = torch.tensor([[1000.0, 0.0, -1000.0]])
naive = torch.exp(big) / torch.exp(big).sum()
print("naive softmax of", big.tolist(), "->", naive.tolist())
print("stable softmax ->", softmax(big).tolist(),
      " cross-entropy for class 1:", F.cross_entropy(big, torch.tensor([1])).item())

# %% [markdown]
# Why not use the squared error for classification too? Take one example with two
# classes, written as one logit $z$ and the probability $\sigma(z)$ of the true class.
# The picture below draws both losses, and their gradients with respect to $z$ computed
# by autograd, as the logit goes from confidently wrong (left) to confidently right.

# %%
z = torch.linspace(-8, 8, 401, requires_grad=True)
p_true = torch.sigmoid(z)
losses = {"cross-entropy  -log p": -torch.log(p_true), "squared error  (1 - p)^2 / 2": 0.5 * (1 - p_true) ** 2}
grads = {name: torch.autograd.grad(l.sum(), z, retain_graph=True)[0] for name, l in losses.items()}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
viz.plot_functions(z.detach(), {k: v.detach() for k, v in losses.items()}, ax=axes[0],
                   title="loss", xlabel="logit of the true class");
viz.plot_functions(z.detach(), {"d/dz " + k.split()[0]: v for k, v in grads.items()}, ax=axes[1],
                   title="gradient", xlabel="logit of the true class");
at = {name: g[0].item() for name, g in grads.items()}   # z = -8: confidently wrong
print("gradient at z = -8:", {k.split()[0]: round(v, 5) for k, v in at.items()})

# %% [markdown]
# The printout shows the gradients at $z = -8$, where the network is confidently wrong.
# The cross-entropy gradient there is close to $-1$: it pushes hardest where the mistake
# is worst. The squared error flattens out, because $\sigma$ saturates, so its gradient
# almost vanishes exactly where learning is needed. That is the practical reason
# classification uses cross-entropy.
#
# ## 3. Gradient descent on a problem you can draw
#
# Gradient descent repeats one line, $w \leftarrow w - \eta \, \nabla_w E(w)$, with
# learning rate $\eta$. A linear regression with two weights lets us draw the loss as a
# landscape and the steps as a path. The two input features have different spreads, so
# the loss is a long narrow valley rather than a round bowl, as it is for real networks.
# We use the mean, $E = \frac1{2N}\lVert Xw - Y\rVert^2$, with gradient
# $\frac1N X^\top(Xw - Y)$.

# %%
torch.manual_seed(0)
X_toy = torch.randn(200, 2, dtype=torch.float64) * torch.tensor([1.0, 0.3], dtype=torch.float64)
w_true = torch.tensor([2.0, -3.0], dtype=torch.float64)
Y_toy = X_toy @ w_true + 0.1 * torch.randn(200, dtype=torch.float64)


def mse_loss(w, X=X_toy, Y=Y_toy):
    """E(w) = |Xw - Y|^2 / 2N, the mean squared error of a linear model."""
    r = X @ w - Y
    return 0.5 * (r @ r) / len(Y)


def mse_grad(w, X=X_toy, Y=Y_toy):
    """The gradient of ``mse_loss``: X^T (Xw - Y) / N."""
    return X.T @ (X @ w - Y) / len(Y)


def gradient_descent(grad, w0, lr, steps):
    """w <- w - lr * grad(w), ``steps`` times; returns every point visited (steps + 1, dim)."""
    w = w0.clone()
    path = [w.clone()]
    for _ in range(steps):
        w = w - lr * grad(w)
        path.append(w.clone())
    return torch.stack(path)


w0 = torch.tensor([-1.0, 1.0], dtype=torch.float64)
rates = {"lr 0.2 (timid)": 0.2, "lr 1.5": 1.5, "lr 2.1 (too large)": 2.1}
paths = {name: gradient_descent(mse_grad, w0, lr, cfg.gd_steps) for name, lr in rates.items()}
for name, path in paths.items():
    print(f"{name:>20}: E after {cfg.gd_steps} steps = {mse_loss(path[-1]).item():.4g}, "
          f"w = {path[-1].numpy().round(3)}")

# %%
H = (X_toy.T @ X_toy / len(Y_toy)).numpy()     # E is a quadratic: E = w'Hw/2 - b'w + c/2
b = (X_toy.T @ Y_toy / len(Y_toy)).numpy()
c = (Y_toy @ Y_toy / len(Y_toy)).item()


def loss_surface(A, B):
    """E on a grid of (w1, w2) values, from the quadratic's coefficients."""
    return 0.5 * (H[0, 0] * A**2 + 2 * H[0, 1] * A * B + H[1, 1] * B**2) - b[0] * A - b[1] * B + 0.5 * c


fig = viz.plot_contour_paths(loss_surface, paths, xlim=(-3, 5), ylim=(-6, 3),
                             levels=np.geomspace(0.01, 60, 18),
                             title=f"{cfg.gd_steps} steps of gradient descent from (-1, 1)")

# %% [markdown]
# The printout and the three panels above tell the same story. The timid rate walks
# straight down the steep side of the valley and then crawls along its flat floor
# towards $w^* \approx (2, -3)$. The middle rate zig-zags across the steep direction but
# gets much closer. The largest rate overshoots the steep direction by more each step
# and diverges.
#
# The valley's two directions are the eigenvectors of $H = X^\top X / N$, and its
# curvature along each is the eigenvalue $\lambda$. Along an eigenvector a step
# multiplies the error $w - w^*$ by $1 - \eta\lambda$, so each direction converges at its
# own rate, $|1 - \eta\lambda|$ per step:

# %%
lam = np.linalg.eigvalsh(H)        # ascending: the flat direction, then the steep one
print(f"eigenvalues of H: flat {lam[0]:.3f}, steep {lam[1]:.3f}")
factors = {name: np.abs(1 - lr * lam) for name, lr in rates.items()}
for name, (flat, steep) in factors.items():
    print(f"{name:>20}: error x{flat:.3f} per step along the flat direction, x{steep:.3f} "
          "along the steep one")
print(f"the best rate for the flat direction alone: 1 / lambda_min = {1 / lam[0]:.1f}")
assert factors["lr 2.1 (too large)"][1] > 1                    # it diverges along the steep one
assert min(factors, key=lambda k: factors[k][0]) == "lr 2.1 (too large)"   # best of 3 when flat
assert 1 / lam[0] > 5 * max(rates.values())

# %% [markdown]
# The printed factors explain the panels. The largest rate multiplies the steep
# direction's error by more than 1 each step, yet of the three rates it is the one that
# shrinks the flat direction's error fastest (the smallest flat-direction factor printed).
# The flat direction alone would like a far larger rate still: its factor
# $|1 - \eta\lambda_{\min}|$ is zero at $\eta = 1/\lambda_{\min}$, about 11.7 here (the
# last line printed), where one step lands on its minimum. One learning rate has to suit
# every direction at once, and the steep direction caps it far below what the flat one
# needs; that tension (exercise 2 finds the exact limit) is what momentum, Adam and batch
# normalisation try to ease.
#
# Autograd and `torch.optim.SGD` take exactly the steps we wrote by hand:

# %%
w = w0.clone().requires_grad_(True)
opt = torch.optim.SGD([w], lr=1.5)
for _ in range(cfg.gd_steps):
    opt.zero_grad()
    mse_loss(w).backward()
    opt.step()
assert torch.allclose(w.detach(), paths["lr 1.5"][-1])
print("torch.optim.SGD ends where our loop ends:", w.detach().numpy().round(6))

# %% [markdown]
# ### Explore: one learning rate for two curvatures
#
# The explorer below runs the same descent on the same valley (built from this section's
# $H$, $b$ and $c$) for any learning rate, number of steps and momentum. The left panel
# draws the path with the two eigenvectors through the minimum; the right one the error
# along each eigenvector per step on a log scale, measured (solid) over the factor
# predicted from the eigenvalues (dotted), so a straight line is a constant factor per
# step. The title above the right panel gives the single rate that makes the slower of the
# two directions as fast as it can be. Look for the rate at which the steep direction's
# line turns upwards and the title says "diverges", and compare it with the best rate:
# past the best rate the zig-zag across the valley, not the crawl along it, sets the pace.
# Then add momentum: it lets the flat direction move faster and widens the range of stable
# rates, at the price of oscillation.

# %%
from cnnbook.widgets.descent import DescentExplorer

descent = DescentExplorer(H, b, c, w0=w0.numpy(), lr=0.2, steps=cfg.gd_steps, xlim=(-3, 5),
                          ylim=(-6, 3))
s = descent.state
print(f"eigenvalues {s['eigenvalues'][0]:.3f} and {s['eigenvalues'][1]:.3f}; best single "
      f"rate {s['best_lr']:.2f} (error x{s['best_rate']:.3f} per step in the slower direction)")
assert abs(s["best_lr"] - 2 / lam.sum()) < 1e-2 * s["best_lr"]
descent

# %% [markdown]
# ## 4. Backward through a convolution
#
# A convolutional layer ([chapter 02](02_convolution_math.ipynb)'s cross-correlation) computes, for a single channel,
#
# $$Z(i, j) = \sum_{u, v} X(i + u, j + v)\, K(u, v) + b .$$
#
# Suppose backpropagation has delivered $\partial L / \partial Z$, one number per output
# position. The chain rule sums over every place a quantity is used.
#
# **Kernel gradient.** The weight $K(u, v)$ is used at *every* output position (weight
# sharing), each time multiplied by $X(i+u, j+v)$:
#
# $$\frac{\partial L}{\partial K(u,v)} = \sum_{i,j} \frac{\partial L}{\partial Z(i,j)}\, X(i+u, j+v),$$
#
# which is the cross-correlation of the input with the output gradient: the output
# gradient plays the role of the kernel, and the result has the kernel's size.
#
# **Input gradient.** The pixel $X(p, q)$ is used by every output $Z(i, j)$ whose window
# covers it, that is with $(u, v) = (p - i, q - j)$ inside the kernel:
#
# $$\frac{\partial L}{\partial X(p,q)} = \sum_{u,v} \frac{\partial L}{\partial Z(p-u, q-v)}\, K(u,v),$$
#
# with $\partial L / \partial Z$ taken as zero outside its borders. The minus signs make
# this a true convolution (a flipped kernel), and "zero outside the borders" makes it a
# *full* one: the output gradient is padded by $k - 1$ on every side, so the result has
# the input's size. **Bias gradient:** $\sum_{i,j} \partial L / \partial Z(i,j)$.
#
# The three formulas, one index at a time:

# %%
def conv_backward_loops(X, K, dZ):
    """dL/dX, dL/dK, dL/db of Z = cross-correlation(X, K) + b for one channel, by loops."""
    kh, kw = K.shape
    zh, zw = dZ.shape
    dK = torch.zeros_like(K)
    for u in range(kh):
        for v in range(kw):
            dK[u, v] = sum(dZ[i, j] * X[i + u, j + v] for i in range(zh) for j in range(zw))
    dX = torch.zeros_like(X)
    for p in range(X.shape[0]):
        for q in range(X.shape[1]):
            dX[p, q] = sum(dZ[p - u, q - v] * K[u, v] for u in range(kh) for v in range(kw)
                           if 0 <= p - u < zh and 0 <= q - v < zw)
    return dX, dK, dZ.sum()

# %% [markdown]
# To check it, we need a loss whose output gradient we know. $L = \sum_{i,j} G(i,j)\, Z(i,j)$
# for a random $G$ has $\partial L / \partial Z = G$ exactly, so autograd's gradients of
# this $L$ are the backward pass of the convolution for the output gradient $G$:

# %%
torch.manual_seed(0)
X1 = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
K1 = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
b1 = torch.zeros(1, dtype=torch.float64, requires_grad=True)
Z1 = F.conv2d(X1[None, None], K1[None, None], b1)[0, 0]     # (4, 5)
G1 = torch.randn_like(Z1)
(G1 * Z1).sum().backward()

dX1, dK1, db1 = conv_backward_loops(X1.detach(), K1.detach(), G1)
for name, mine, ref in (("dL/dX", dX1, X1.grad), ("dL/dK", dK1, K1.grad), ("dL/db", db1, b1.grad[0])):
    assert torch.allclose(mine, ref), name
    print(f"{name}: loops vs autograd, relative error {relative_error(mine, ref):.1e}")

# %% [markdown]
# The two identities, checked with PyTorch's own cross-correlation: the kernel gradient
# is `conv2d(X, dZ)`, and the input gradient is `conv2d` of the output gradient padded
# by $k-1$ with the kernel flipped in both directions.

# %%
as_map = lambda t: t[None, None]   # noqa: E731  (H, W) -> (1, 1, H, W)
dK_corr = F.conv2d(as_map(X1.detach()), as_map(G1))[0, 0]
dX_full = F.conv2d(F.pad(as_map(G1), (2, 2, 2, 2)), as_map(K1.detach().flip(0, 1)))[0, 0]
assert torch.allclose(dK_corr, K1.grad) and torch.allclose(dX_full, X1.grad)
print("dL/dK = X correlated with dL/dZ:", tuple(dK_corr.shape),
      "  dL/dX = full convolution of dL/dZ with flipped K:", tuple(dX_full.shape))

# %% [markdown]
# A picture makes the input gradient less abstract. If the output gradient is a single
# 1 at one position (the loss cares about one output only), the input gradient is the
# kernel itself, pasted where that output's window sits: every input pixel gets the
# weight it was multiplied by. A general output gradient is a sum of such impulses, so
# the input gradient is a sum of weighted, shifted copies of the kernel.

# %%
K_show = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [-2.0, 0.0, 1.0]])
impulses = []
for i, j in [(0, 0), (2, 3), (5, 5)]:
    dZ_imp = torch.zeros(6, 6)
    dZ_imp[i, j] = 1.0
    impulses.append(conv_backward_loops(torch.zeros(8, 8), K_show, dZ_imp)[0])
fig = viz.plot_feature_maps(torch.stack(impulses), ncols=3, scale=2.2, cmap="RdBu_r",
                            title="dL/dX for an output gradient of 1 at (0,0), (2,3), (5,5)")
assert torch.equal(impulses[1][2:5, 3:6], K_show)

# %% [markdown]
# ### Padding, channels, stride: the tested module
#
# Real layers have many channels, a batch, padding and sometimes a stride. Each changes
# the formulas in one simple way:
#
# - **channels and batch**: the sums run over the batch and over output positions for
#   each weight $(o, c, u, v)$: $\partial L/\partial W_{ocuv} = \sum_n \sum_{i,j}
#   \partial L/\partial Z_{noij}\, X_{n,c,i+u,j+v}$; the input gradient of channel $c$
#   sums over the output channels $o$.
# - **padding**: the forward pass convolves a padded input, so the backward pass computes
#   the gradient of the padded input and crops the padding off (those cells are
#   constants, not inputs).
# - **stride** $s$: output $(i, j)$ starts at $(s i, s j)$; spacing the output gradient
#   out with $s - 1$ zeros between its cells turns the backward pass back into the
#   stride-1 case.
#
# `cnnbook.backprop.conv2d_backward` does all of this with two calls to `F.conv2d`:

# %%
show_source(conv2d_backward);

# %% [markdown]
# Checked on a layer of realistic shape (a batch of 8, 3 -> 16 channels, 3x3, stride 2,
# padding 1) against autograd, and, on a small one, against finite differences, which
# need nothing but the forward pass:

# %%
torch.manual_seed(1)
Xb = torch.randn(8, 3, 32, 32, requires_grad=True)
Wb = torch.randn(16, 3, 3, 3, requires_grad=True)
bb = torch.randn(16, requires_grad=True)
Zb = F.conv2d(Xb, Wb, bb, stride=2, padding=1)
Gb = torch.randn_like(Zb)
(Gb * Zb).sum().backward()
mine = conv2d_backward(Xb.detach(), Wb.detach(), Gb, stride=2, padding=1)
errors = {name: relative_error(m, t.grad) for name, m, t in zip(("dX", "dW", "db"), mine, (Xb, Wb, bb))}
print("hand-written vs autograd, float32:", {k: f"{v:.1e}" for k, v in errors.items()})
assert max(errors.values()) < 1e-5

Xs = torch.randn(1, 2, 5, 5, dtype=torch.float64)
Ws = torch.randn(3, 2, 3, 3, dtype=torch.float64)
Gs = torch.randn(1, 3, 3, 3, dtype=torch.float64)
numeric = numerical_grad(lambda w: (F.conv2d(Xs, w, padding=1, stride=2) * Gs).sum(), Ws)
by_hand = conv2d_backward(Xs, Ws, Gs, stride=2, padding=1)[1]
print(f"dW by hand vs finite differences, float64: relative error {relative_error(numeric, by_hand):.1e}")
assert relative_error(numeric, by_hand) < 1e-8

# %% [markdown]
# Finite differences cost two forward passes per weight, hopeless for training but the
# standard way to test a backward pass (`torch.autograd.gradcheck` does the same).
#
# Because the weight gradient is a **sum over the batch**, it can be split. Data-parallel
# training on several GPUs gives each GPU a slice of the batch; each computes the
# gradient of its slice, and an *all-reduce* sums the slices' gradients on every GPU, so
# all of them take the same step. Two "GPUs" in one process:

# %%
halves = [conv2d_backward(Xb.detach()[part], Wb.detach(), Gb[part], stride=2, padding=1)[1]
          for part in (slice(0, 4), slice(4, 8))]
all_reduced = halves[0] + halves[1]
assert torch.allclose(all_reduced, Wb.grad, atol=1e-4)
print(f"sum of the two slices' dW vs whole-batch dW: relative error "
      f"{relative_error(all_reduced, Wb.grad):.1e}")

# %% [markdown]
# (With a *mean* loss over the batch each slice's gradient is also divided by the number
# of slices, which is what PyTorch's `DistributedDataParallel` does after summing.)
#
# ## 5. Backward through pooling
#
# Pooling has no weights, only an input gradient.
#
# - **Max pooling** outputs one cell of each window, so the output's gradient flows back
#   to that cell (the arg-max) only; the other cells did not influence the output and get
#   zero. (On a tie PyTorch picks the first maximum.)
# - **Average pooling** outputs $\frac1{|R|}\sum_{r \in R} x_r$ over a window $R$, so each
#   cell receives $\frac1{|R|}$ of the window's gradient.
#
# If windows overlap, a cell collects contributions from every window it belongs to.

# %%
def max_pool_backward_loops(X, dY, k):
    """dL/dX of k x k max pooling with stride k, for one channel: route to the arg-max."""
    dX = torch.zeros_like(X)
    for i in range(dY.shape[0]):
        for j in range(dY.shape[1]):
            window = X[i * k:(i + 1) * k, j * k:(j + 1) * k]
            r, c = divmod(int(window.argmax()), k)          # first maximum, row by row
            dX[i * k + r, j * k + c] += dY[i, j]
    return dX


def avg_pool_backward_loops(X, dY, k):
    """dL/dX of k x k average pooling with stride k, for one channel: spread evenly."""
    dX = torch.zeros_like(X)
    for i in range(dY.shape[0]):
        for j in range(dY.shape[1]):
            dX[i * k:(i + 1) * k, j * k:(j + 1) * k] += dY[i, j] / (k * k)
    return dX


torch.manual_seed(3)
Xp = torch.randperm(16).view(4, 4).double().requires_grad_(True)   # no ties
dYp = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
for pool, loops in ((F.max_pool2d, max_pool_backward_loops), (F.avg_pool2d, avg_pool_backward_loops)):
    Xp.grad = None
    (pool(as_map(Xp), 2)[0, 0] * dYp).sum().backward()
    mine = loops(Xp.detach(), dYp, 2)
    assert torch.allclose(mine, Xp.grad)
    print(f"{pool.__name__}: dL/dX (loops = autograd)\n{mine.numpy()}")
print("input:\n", Xp.detach().numpy())

# %% [markdown]
# In the max-pooling gradient above, each 2x2 window has exactly one nonzero cell, at its
# maximum in the input; the average-pooling gradient fills each window with a quarter of
# its value. The vectorised versions in `cnnbook.backprop` use `F.unfold` to lay out the
# windows as columns and `F.fold` to add the columns back into an image, which handles
# overlapping windows (such as AlexNet's 3x3 pools with stride 2) for free:

# %%
show_source(max_pool2d_backward);

# %%
Xo = torch.relu(torch.randn(4, 8, 13, 13, dtype=torch.float64)).requires_grad_(True)
for pool, mine in ((F.max_pool2d, lambda g: max_pool2d_backward(Xo.detach(), g, 3, 2)),
                   (F.avg_pool2d, lambda g: avg_pool2d_backward(g, (13, 13), 3, 2))):
    Xo.grad = None
    out = pool(Xo, 3, 2)
    g = torch.randn_like(out)
    out.backward(g)
    assert torch.allclose(mine(g), Xo.grad)
    print(f"{pool.__name__} 3x3 stride 2 on ReLU outputs (with ties): matches autograd, "
          f"relative error {relative_error(mine(g), Xo.grad):.1e}")

# %% [markdown]
# ## 6. The whole chain, by hand
#
# With these pieces the backward pass of a small CNN is a sequence of local steps run
# in reverse order. For conv -> ReLU -> 2x2 max pool -> linear -> softmax cross-entropy
# (the shape of the MNIST CNN of the next section) on a tiny batch:

# %%
torch.manual_seed(4)
Xc = torch.randn(2, 1, 8, 8)
yc = torch.tensor([1, 0])
Kc = (0.3 * torch.randn(4, 1, 3, 3)).requires_grad_(True)
Wc = (0.1 * torch.randn(3, 4 * 3 * 3)).requires_grad_(True)

Zc = F.conv2d(Xc, Kc)                     # forward, keeping what the backward pass needs
Ac = torch.relu(Zc)
Mc = F.max_pool2d(Ac, 2)
Oc = Mc.flatten(1) @ Wc.T
F.cross_entropy(Oc, yc).backward()        # autograd, for comparison

with torch.no_grad():                     # backward, one layer at a time
    dO = (softmax(Oc) - F.one_hot(yc, 3)) / len(yc)      # softmax + cross-entropy
    dW = dO.T @ Mc.flatten(1)                            # linear: weights
    dM = (dO @ Wc).view_as(Mc)                           # linear: input
    dA = max_pool2d_backward(Ac, dM, 2)                  # max pool: route
    dZ = dA * (Zc > 0)                                   # ReLU: pass where positive
    _, dK, _ = conv2d_backward(Xc, Kc, dZ)               # convolution
print(f"dW: relative error {relative_error(dW, Wc.grad):.1e}, "
      f"dK: relative error {relative_error(dK, Kc.grad):.1e}")
assert relative_error(dW, Wc.grad) < 1e-5 and relative_error(dK, Kc.grad) < 1e-5

# %% [markdown]
# That is all backpropagation is. Autograd records the forward operations on a tape and
# calls each one's backward function in reverse, exactly as the cell above does by hand.
#
# ## 7. CNN versus MLP on MNIST
#
# Now the pieces at work. The sources compare two networks on MNIST, 28x28 grey digits:
#
# - a **CNN**: one 3x3 convolution with 32 channels, ReLU, 2x2 max pooling, and a linear
#   layer from the $32 \times 13 \times 13$ pooled map to 10 classes;
# - an **MLP**: the image flattened to 784 numbers, a hidden layer of 512 units with ReLU,
#   and 10 outputs.
#
# The MLP connects every pixel to every hidden unit; the CNN connects each unit to a 3x3
# patch (local connections) and uses the same 9 weights at all positions (weight
# sharing). Both live in `cnnbook.models.small`:

# %%
show_source(mnist_cnn);
cnn, mlp = mnist_cnn(), mnist_mlp()
print(shape_table(cnn, (1, 1, 28, 28)))
print(shape_table(mlp, (1, 1, 28, 28)))

# %% [markdown]
# ### Counting parameters
#
# The sources give the MLP's weights as $784 \cdot 512 = 401{,}408$ plus
# $512 \cdot 10 = 5{,}120$, and say that the CNN needs "about 1/16" of the MLP's
# parameters. We count:

# %%
def weights_and_biases(model):
    """Parameter counts per learned layer: weights, biases."""
    return pd.DataFrame({name: {"weights": m.weight.numel(), "biases": m.bias.numel()}
                         for name, m in model.named_children() if hasattr(m, "weight")}).T


counts = pd.concat({"CNN": weights_and_biases(cnn), "MLP": weights_and_biases(mlp)})
print(counts.to_string())
assert mlp.fc1.weight.numel() == 401_408 and mlp.fc2.weight.numel() == 5_120
n_cnn, n_mlp = count_params(cnn), count_params(mlp)
ratio = n_cnn / n_mlp
print(f"\nCNN {n_cnn:,} parameters, MLP {n_mlp:,}: the CNN has {ratio:.3f} = 1/{1 / ratio:.1f} "
      f"of the MLP's parameters")
print(f"the convolution alone: {count_params(cnn.conv):,} parameters, "
      f"1/{mlp.fc1.weight.numel() / cnn.conv.weight.numel():,.0f} of the MLP's first layer weights")
print(f"the CNN's linear layer holds {count_params(cnn.fc) / n_cnn:.1%} of its parameters")

# %% [markdown]
# The counting in the cell above does not support "about 1/16": the CNN has fewer
# parameters than the MLP by the factor it prints, well short of 16. The claim's spirit
# is right for the *convolution*, which needs a tiny fraction of the first MLP layer's
# weights, but almost all of this CNN's parameters sit in its final linear layer, which
# still connects every position of the 32 pooled maps to every class. Deeper CNNs pool
# more before the classifier (and [chapter 08](08_nin.ipynb)'s NiN removes it), which is where the big
# savings come from.
#
# ### Training both
#
# The sources' recipe for both: plain SGD, learning rate 0.01, batch 64, 5 epochs,
# PyTorch's default initialisation.

# %%
train_iter, test_iter = cnnbook.load_data("mnist", batch_size=cfg.batch_size,
                                          limit=cfg.limit, test_limit=cfg.test_limit)
print(f"{train_iter.num_examples:,} training and {test_iter.num_examples:,} test images")
X_test, y_test = next(iter(test_iter))
fig = viz.show_images(X_test[:16], titles=[str(int(t)) for t in y_test[:16]], ncols=8, scale=1.1)

# %%
cnnbook.seed_everything(0)
cnn = mnist_cnn()
cnn_result = cnnbook.fit(cnn, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                         name="mnist_cnn", chapter="04")

# %%
cnnbook.seed_everything(0)
mlp = mnist_mlp()
mlp_result = cnnbook.fit(mlp, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                         name="mnist_mlp", chapter="04")

# %%
comparison = pd.DataFrame({
    "parameters": [count_params(cnn), count_params(mlp)],
    "test accuracy": [cnn_result.test_acc, mlp_result.test_acc],
    "train loss": [cnn_result.train_loss, mlp_result.train_loss],
    "examples/s": [cnn_result.examples_per_sec, mlp_result.examples_per_sec]},
    index=["CNN", "MLP"])
print(comparison.round({"test accuracy": 4, "train loss": 4, "examples/s": 0}).to_string())
curves = pd.DataFrame({"CNN": cnn_result.history.set_index("epoch")["test_acc"],
                       "MLP": mlp_result.history.set_index("epoch")["test_acc"]})
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
viz.plot_history(cnn_result.history, ax=axes[0], title="CNN");
curves.plot(ax=axes[1], marker="o", title="test accuracy", xlabel="epoch", grid=True);
# the full training set (not a rehearsal's two batches): the comparison the prose describes
if cfg.limit is None and cnnbook.claims_checked(PROFILE):
    assert cnn_result.test_acc > mlp_result.test_acc
    if device.type == "cpu":
        assert mlp_result.examples_per_sec > cnn_result.examples_per_sec

# %% [markdown]
# The table above compares the two runs. With the sources' recipe the CNN reaches a
# higher test accuracy than the MLP with a fraction of its parameters, and costs more
# arithmetic per example (the MLP's `examples/s` is higher): every convolution weight
# is used at all $26 \times 26$ positions. In the `smoke` profile
# (one epoch on 2,000 images) the numbers are only a sanity check.
#
# Where the CNN still errs, by class (rows: true digit, columns: predicted):

# %%
preds, truth = predict(cnn, test_iter)
fig = viz.plot_confusion_matrix(truth, preds, [str(d) for d in range(10)],
                                title="CNN on the MNIST test set")

# %% [markdown]
# ### What the two networks learned
#
# The CNN's 32 kernels are 3x3 detectors of local patterns (mostly edges of some
# orientation); its feature maps for one digit, tiled into one image with
# `torchvision.utils.make_grid`, show where each pattern occurs:

# %%
fig = viz.plot_kernels(cnn.conv.weight, ncols=16, scale=0.7, title="CNN: the 32 learned 3x3 kernels")
digit = X_test[:1]
maps = capture(cnn, digit, ["relu"])["relu"][0]               # (32, 26, 26)
grid = make_grid(maps.unsqueeze(1), nrow=8, normalize=True, scale_each=True, pad_value=1.0)
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.imshow(grid[0], cmap="gray")
ax.set_title(f"CNN feature maps after ReLU for a '{int(y_test[0])}' (32 x 26 x 26)")
ax.axis("off");

# %% [markdown]
# The MLP's equivalent of a kernel is the weight vector of one hidden unit: 784 numbers,
# one per pixel, which we can show as a 28x28 image. Plain SGD moves them only a little
# away from their random start, so we show what training *changed*: the trained weights
# minus the initial ones, which we get back by building the MLP again from the same seed.
# Each is a template *fixed in place*:

# %%
cnnbook.seed_everything(0)
mlp_start = mnist_mlp()                      # the same seed as before training: same weights
change = (mlp.fc1.weight.detach().cpu() - mlp_start.fc1.weight.detach())[:16]
fig = viz.plot_kernels(change.view(16, 1, 28, 28), ncols=8, scale=1.1,
                       title="MLP: change of the weights of 16 hidden units, as images")

# %% [markdown]
# A stroke the MLP has learned to detect at one position is stored in the weights of
# those pixels; the same stroke two pixels to the right touches different weights, which
# must learn it again. The CNN's kernel is applied everywhere, so what it learns at one
# position it knows at all of them.
#
# ## 8. Translation equivariance, measured
#
# A layer $f$ is translation-**equivariant** if shifting the input shifts the output,
# $f(\text{shift}(X)) = \text{shift}(f(X))$, and **invariant** if the output does not
# change, $f(\text{shift}(X)) = f(X)$. The convolution is equivariant by construction (the
# same weights at every position); max pooling with stride 2 is equivariant for shifts by
# multiples of 2 (the output moves by half as much) and roughly invariant to smaller
# ones. `cnnbook.equivariance` measures both; first the trained CNN's layers, on 256
# test digits, away from the borders:

# %%
show_source(equivariance_error);
X_eq = torch.cat([xb for xb, _ in test_iter])[:256].to(device)
feature_maps, pooled = cnn[:2], cnn[:3]                     # conv + ReLU; + max pool
eq = pd.DataFrame({
    f"shift ({dy}, {dx})": {
        "conv + ReLU: equivariance error": equivariance_error(feature_maps, X_eq, dy, dx),
        "+ max pool: equivariance error": equivariance_error(pooled, X_eq, dy, dx, stride=2),
        "conv + ReLU: change without undoing the shift": representation_change(feature_maps, X_eq, dy, dx),
        "MLP hidden layer: change": representation_change(mlp[:3], X_eq, dy, dx)}
    for dy, dx in [(0, 2), (2, 0), (2, 4), (-4, 2)]})
print(eq.to_string(float_format=lambda v: f"{v:.2e}"))
assert eq.iloc[0].max() < 1e-5 and eq.iloc[1].max() < 1e-5

# %% [markdown]
# The first two rows of the table above are zero, or rounding errors of about $10^{-7}$
# (the shifted input gives the same sums, possibly added in another order): shift the
# digit and the CNN's feature maps shift with it, exactly. The last two rows show that
# the representations themselves change a lot (their relative change is of order one):
# equivariance is not invariance. The CNN's change is *only* a shift, which the next
# layer could undo; the MLP's hidden layer has no spatial layout at all, so nothing
# similar can be said of it.
#
# What matters in the end is the classifier's output. `shifted_accuracy` moves every
# test digit by $k$ pixels (right, down, left and up in turn) and measures the accuracy
# (the `smoke` profile uses only a few test batches):

# %%
shifts = (0, 1, 2, 3, 4)
shift_test = list(itertools.islice(test_iter, cfg.shift_batches))   # 17 passes per image
robust = pd.DataFrame({"CNN": shifted_accuracy(cnn, shift_test, shifts),
                       "MLP": shifted_accuracy(mlp, shift_test, shifts)})
robust.index.name = "shift (pixels)"
print(robust.round(4).to_string())
fig, ax = plt.subplots(figsize=(5, 3.2))
robust.plot(ax=ax, marker="o", xlabel="shift (pixels)", ylabel="test accuracy",
            title="Accuracy on shifted test digits", grid=True);
if not cnnbook.config.rehearsing():   # trained networks (make rehearse trains two batches)
    assert (robust.loc[4] < robust.loc[0]).all()

# %% [markdown]
# Both networks lose accuracy as the digits move (table and plot above), because MNIST's
# digits are centred and both classifiers end in a linear layer that ties weights to
# positions: the CNN is equivariant up to its pooled map, not invariant. Compare the
# two columns: how much of its accuracy each keeps at one pixel, and at four. Max pooling
# absorbs part of a one-pixel move; larger moves need more pooling (deeper networks),
# global average pooling ([chapter 08](08_nin.ipynb)), or training on shifted images (data
# augmentation by random crops and translations: [chapter 15](15_cifar10.ipynb), section 6,
# and [chapter 16](16_regularization.ipynb)).
#
# ## 9. Applications and limits
#
# The sources close this part with a table of what CNNs are used for, where they
# struggle, and the fixes that later chapters teach:
#
# | task | typical network | a known limit |
# |---|---|---|
# | classification | ResNet ([chapter 11](11_resnet.ipynb)) | |
# | detection | YOLO | small objects are hard |
# | segmentation | U-Net | needs many pixel-level labels |
#
# | problem | fix |
# |---|---|
# | vanishing gradients in deep networks | residual connections ([chapter 11](11_resnet.ipynb)) |
# | too small a receptive field | dilated convolution ([chapter 02](02_convolution_math.ipynb)) |
# | too much computation | depthwise separable convolution (MobileNet, [chapter 13](13_mobilenet.ipynb)) |
#
# The first fix is a statement about this chapter's backward pass: in a deep chain, the
# gradient that reaches the first layers is a product of many local factors, and
# residual connections add a path along which it passes unchanged.
#
# ## Summary
#
# - Mean squared error $\frac12\sum(y - \hat y)^2 = \frac12(Y - \hat Y)^\top(Y - \hat Y)$
#   for regression; cross-entropy $-\frac1N\sum_i\sum_c y_{ic}\log\hat y_{ic}$ on softmax
#   outputs for classification, whose gradient with respect to the logits is $P - Y$
#   (over $N$). Squared error on a saturating output has vanishing gradients exactly when
#   the prediction is badly wrong.
# - Gradient descent $w \leftarrow w - \eta\nabla E$: too small a rate crawls along flat
#   directions, too large a rate diverges along steep ones.
# - Convolution backward: $\partial L/\partial K$ is the cross-correlation of the input
#   with the output gradient, $\partial L/\partial X$ the full convolution of the output
#   gradient with the flipped kernel; padding becomes cropping, stride becomes spacing,
#   channels and batch become sums. Sums over the batch are what multi-GPU training
#   all-reduces.
# - Pooling backward: max routes the gradient to the arg-max, average spreads it as
#   $1/|R|$. Every hand-written gradient here agrees with autograd and with finite
#   differences.
# - On MNIST a one-convolution CNN beats a 512-unit MLP with far fewer parameters (though
#   not 1/16 of them); its feature maps are exactly translation-equivariant, but its
#   linear classifier is not invariant to shifts.
#
# ## Exercises
#
# **Exercise 1 (the gradient of label smoothing).** Label smoothing (Szegedy et al.,
# 2016) trains against softened targets $y' = (1-\varepsilon)\, y + \varepsilon / C$
# instead of one-hot labels $y$. Derive the gradient of the mean cross-entropy with
# respect to the logits and write `smoothed_ce_grad(logits, labels, eps)` without
# autograd. The test compares it with `F.cross_entropy(..., label_smoothing=eps)`.

# %% nbgrader={"grade": false, "grade_id": "ex-04-label-smoothing", "locked": false, "schema_version": 3, "solution": true, "task": false}
def smoothed_ce_grad(logits, labels, eps):
    """dL/dlogits (N, C) of the mean cross-entropy with targets (1 - eps) y + eps / C."""
    ### BEGIN SOLUTION
    n, c = logits.shape
    targets = (1 - eps) * F.one_hot(labels, c).to(logits.dtype) + eps / c
    return (softmax(logits) - targets) / n
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-04-label-smoothing-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(10)
for _eps in (0.0, 0.1, 0.3):
    _o = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    _y = torch.randint(0, 5, (6,))
    F.cross_entropy(_o, _y, label_smoothing=_eps).backward()
    assert torch.allclose(smoothed_ce_grad(_o.detach(), _y, _eps), _o.grad), _eps
# with smoothing the gradient never vanishes at a confident right answer
_g = smoothed_ce_grad(torch.tensor([[20.0, 0.0, 0.0]]), torch.tensor([0]), 0.1)
assert _g[0, 0] > 0.05
print("label smoothing: gradient = softmax - smoothed targets")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(logits, labels, eps):
    _o = logits.clone().requires_grad_(True)
    F.cross_entropy(_o, labels, label_smoothing=eps).backward()
    return _o.grad


_g = generator(401)
agrees(smoothed_ce_grad, _ref, [(torch.randn(n, c, generator=_g, dtype=torch.float64),
                                 torch.randint(0, c, (n,), generator=_g), e)
                                for n, c, e in [(3, 7, 0.2), (9, 2, 0.05), (4, 4, 0.6)]], atol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (the largest stable learning rate).** For the mean squared error of a
# linear model, $E(w) = \frac1{2N}\lVert Xw - Y\rVert^2$, one step of gradient descent
# maps the error $w - w^*$ to $(I - \eta H)(w - w^*)$ with $H = X^\top X / N$. Show that
# the iteration converges if and only if $\eta < 2/\lambda_{\max}(H)$, and write
# `max_stable_lr(X)` that returns this bound. (Check it against section 3: which of the
# three rates there was above the bound?) The test runs `gradient_descent` just below
# and just above your bound.

# %% nbgrader={"grade": false, "grade_id": "ex-04-stable-lr", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_stable_lr(X):
    """The largest learning rate for which gradient descent on |Xw - Y|^2 / 2N converges."""
    ### BEGIN SOLUTION
    H = X.T @ X / X.shape[0]
    return 2.0 / torch.linalg.eigvalsh(H).max().item()
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-04-stable-lr-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(11)
_X = torch.randn(100, 3, dtype=torch.float64) * torch.tensor([2.0, 1.0, 0.2], dtype=torch.float64)
_Y = _X @ torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
_grad = lambda w: _X.T @ (_X @ w - _Y) / len(_Y)   # noqa: E731
_bound = max_stable_lr(_X)
_start = torch.zeros(3, dtype=torch.float64)
_below = gradient_descent(_grad, _start, 0.95 * _bound, 2000)[-1]
_above = gradient_descent(_grad, _start, 1.05 * _bound, 2000)[-1]
assert torch.allclose(_below, torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64), atol=1e-3)
assert _above.abs().max() > 1e6
assert abs(max_stable_lr(X_toy) - 2 / np.linalg.eigvalsh(H).max()) < 1e-9
print(f"stable below lr = {_bound:.4f}; section 3's toy problem: {max_stable_lr(X_toy):.3f}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(X):
    return 2.0 / torch.linalg.eigvalsh(X.T @ X / X.shape[0]).max().item()


_g = generator(402)
agrees(max_stable_lr, _ref, [(torch.randn(n, d, generator=_g, dtype=torch.float64) * s,)
                             for n, d, s in [(50, 4, 3.0), (20, 2, 0.5), (80, 6, 1.0)]], rtol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (convolution backward with a stride).** Extend `conv_backward_loops` to a
# stride $s$: output $(i, j)$ now reads the window starting at $(s i, s j)$. Write
# `conv_backward_stride_loops(X, K, dZ, stride)` for one channel with plain loops (no
# `F.conv2d`, no `cnnbook.backprop`), returning `(dX, dK)`. Hint: write the forward sum
# with the stride, then ask, for each weight and each input pixel, which outputs used it.

# %% nbgrader={"grade": false, "grade_id": "ex-04-stride-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv_backward_stride_loops(X, K, dZ, stride):
    """dL/dX and dL/dK of Z(i, j) = sum_uv X(s i + u, s j + v) K(u, v), one channel, by loops."""
    ### BEGIN SOLUTION
    kh, kw = K.shape
    zh, zw = dZ.shape
    dK = torch.zeros_like(K)
    dX = torch.zeros_like(X)
    for i in range(zh):
        for j in range(zw):
            for u in range(kh):
                for v in range(kw):
                    dK[u, v] += dZ[i, j] * X[stride * i + u, stride * j + v]
                    dX[stride * i + u, stride * j + v] += dZ[i, j] * K[u, v]
    return dX, dK
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-04-stride-backward-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(12)
for _s, _size, _k in ((2, 7, 3), (3, 8, 2), (1, 5, 3), (2, 6, 2)):
    _X = torch.randn(_size, _size, dtype=torch.float64, requires_grad=True)
    _K = torch.randn(_k, _k, dtype=torch.float64, requires_grad=True)
    _Z = F.conv2d(_X[None, None], _K[None, None], stride=_s)[0, 0]
    _G = torch.randn_like(_Z)
    (_Z * _G).sum().backward()
    _dX, _dK = conv_backward_stride_loops(_X.detach(), _K.detach(), _G, _s)
    assert torch.allclose(_dX, _X.grad) and torch.allclose(_dK, _K.grad), (_s, _size, _k)
print("strided convolution backward matches autograd")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(X, K, dZ, stride):
    _X, _K = X.clone().requires_grad_(True), K.clone().requires_grad_(True)
    (F.conv2d(_X[None, None], _K[None, None], stride=stride)[0, 0] * dZ).sum().backward()
    return _X.grad, _K.grad


_g = generator(403)
_cases = []
for _s, _n, _k in ((2, 9, 3), (3, 7, 1), (1, 4, 4), (4, 11, 3)):
    _zn = (_n - _k) // _s + 1
    _cases.append((torch.randn(_n, _n, generator=_g, dtype=torch.float64),
                   torch.randn(_k, _k, generator=_g, dtype=torch.float64),
                   torch.randn(_zn, _zn, generator=_g, dtype=torch.float64), _s))
agrees(conv_backward_stride_loops, _ref, _cases, atol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (a whole backward pass).** A tiny all-convolutional classifier: a 3x3
# convolution without bias from 1 to $C$ channels, ReLU, *global average pooling* (the
# mean of each channel's map, giving $N \times C$ features), a linear layer without bias
# (`W` of shape classes x $C$), and the mean softmax cross-entropy. Write
# `manual_grads(X, y, K, W)` that returns `(dK, dW)` without autograd. You may use
# `softmax` and `conv2d_backward`; global average pooling is average pooling over the
# whole map.

# %% nbgrader={"grade": false, "grade_id": "ex-04-manual-grads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def manual_grads(X, y, K, W):
    """(dL/dK, dL/dW) of cross_entropy(mean_hw(relu(conv2d(X, K))) @ W.T, y), by hand."""
    ### BEGIN SOLUTION
    Z = F.conv2d(X, K)
    A = torch.relu(Z)
    h = A.mean(dim=(2, 3))
    O = h @ W.T
    dO = (softmax(O) - F.one_hot(y, W.shape[0]).to(O.dtype)) / len(y)
    dW = dO.T @ h
    dh = dO @ W
    dA = dh[:, :, None, None].expand_as(A) / (A.shape[2] * A.shape[3])
    dZ = dA * (Z > 0)
    _, dK, _ = conv2d_backward(X, K, dZ)
    return dK, dW
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-04-manual-grads-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(13)
_X = torch.randn(5, 1, 9, 9, dtype=torch.float64)
_y = torch.randint(0, 4, (5,))
_K = torch.randn(6, 1, 3, 3, dtype=torch.float64, requires_grad=True)
_W = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
F.cross_entropy(F.relu(F.conv2d(_X, _K)).mean(dim=(2, 3)) @ _W.T, _y).backward()
_dK, _dW = manual_grads(_X, _y, _K.detach(), _W.detach())
assert _dK.shape == _K.shape and _dW.shape == _W.shape
assert relative_error(_dK, _K.grad) < 1e-10 and relative_error(_dW, _W.grad) < 1e-10
print("hand-written backward pass = autograd")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(X, y, K, W):
    _K, _W = K.clone().requires_grad_(True), W.clone().requires_grad_(True)
    F.cross_entropy(F.relu(F.conv2d(X, _K)).mean(dim=(2, 3)) @ _W.T, y).backward()
    return _K.grad, _W.grad


_g = generator(404)
_cases = [(torch.randn(n, 1, s, s, generator=_g, dtype=torch.float64), torch.randint(0, c, (n,), generator=_g),
           torch.randn(m, 1, 3, 3, generator=_g, dtype=torch.float64), torch.randn(c, m, generator=_g, dtype=torch.float64))
          for n, s, m, c in [(3, 7, 2, 3), (6, 5, 4, 5)]]
agrees(manual_grads, _ref, _cases, forbid=("torch.autograd.backward", "torch.autograd.grad"), atol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 5 (what a shift does to the MLP).** Section 8 showed that the MLP loses
# accuracy on shifted digits. Is that because it never saw shifted digits? Complete
# `train_small_mlp`, which trains a fresh `mnist_mlp()` with `torch.optim.SGD` for a few
# epochs on the first 2,000 training images of `train_iter`: when `augment` is true,
# shift each batch by a random amount of up to `max_shift` pixels in each direction
# before the step (use `cnnbook.equivariance.shift`; one random shift per batch is
# enough). The test checks that the augmented network keeps more of its accuracy on
# digits shifted by 3 pixels than the same network trained on unshifted digits.

# %% nbgrader={"grade": false, "grade_id": "ex-04-shift-augment", "locked": false, "schema_version": 3, "solution": true, "task": false}
from cnnbook.equivariance import shift


def train_small_mlp(augment: bool, n_images: int = 2_000, epochs: int = 5, lr: float = 0.1,
                    max_shift: int = 3):
    """A fresh mnist_mlp trained by SGD on the first n_images of train_iter."""
    cnnbook.seed_everything(0)
    model = mnist_mlp().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        seen = 0
        for Xb_, yb_ in train_iter:
            Xb_, yb_ = Xb_.to(device), yb_.to(device)
            ### BEGIN SOLUTION
            if augment:
                dy, dx = torch.randint(-max_shift, max_shift + 1, (2,)).tolist()
                Xb_ = shift(Xb_, dy, dx)
            opt.zero_grad()
            F.cross_entropy(model(Xb_), yb_).backward()
            opt.step()
            ### END SOLUTION
            seen += len(yb_)
            if seen >= n_images:
                break
    return model


augmented_mlp = train_small_mlp(augment=True)

# %% nbgrader={"grade": true, "grade_id": "ex-04-shift-augment-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_plain = train_small_mlp(augment=False)
_acc_aug = shifted_accuracy(augmented_mlp, test_iter, (3,))[3]
_acc_plain = shifted_accuracy(_plain, test_iter, (3,))[3]
print(f"accuracy on digits shifted by 3 px: augmented {_acc_aug:.3f}, plain {_acc_plain:.3f}")
assert _acc_aug > _acc_plain + 0.05
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()
assert isinstance(augmented_mlp, nn.Module) and isinstance(_plain, nn.Module) and augmented_mlp is not _plain
assert float(_acc_aug) > float(_acc_plain) + 0.05
assert any(not torch.equal(a, b) for a, b in zip(augmented_mlp.parameters(), _plain.parameters())),     "training with shifts must change the model"
### END HIDDEN TESTS

# %% [markdown]
# The MLP *can* learn to cope with shifts, but only by seeing the digits at every
# position: it learns each position separately, where the CNN's kernels get equivariance
# for free.
#
# ## References
#
# - A.-L. Cauchy (1847). *Méthode générale pour la résolution des systèmes d'équations
#   simultanées.* Comptes rendus de l'Académie des sciences 25.
# - S. Linnainmaa (1970). *The representation of the cumulative rounding error of an
#   algorithm as a Taylor expansion of the local rounding errors.* Master's thesis,
#   University of Helsinki.
# - P. Werbos (1974). *Beyond Regression: New Tools for Prediction and Analysis in the
#   Behavioral Sciences.* PhD thesis, Harvard University.
# - D. E. Rumelhart, G. E. Hinton, R. J. Williams (1986). *Learning representations by
#   back-propagating errors.* Nature 323.
# - Y. LeCun, B. Boser, J. S. Denker, D. Henderson, R. E. Howard, W. Hubbard, L. D. Jackel
#   (1989). *Backpropagation Applied to Handwritten Zip Code Recognition.* Neural
#   Computation 1(4).
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner (1998). *Gradient-Based Learning Applied to
#   Document Recognition.* Proceedings of the IEEE 86(11) (the MNIST dataset).
# - V. Dumoulin, F. Visin (2016). *A guide to convolution arithmetic for deep learning.*
#   arXiv:1603.07285 (transposed convolution: the input gradient of a convolution).
# - C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna (2016). *Rethinking the
#   Inception Architecture for Computer Vision.* CVPR (label smoothing).
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, sections
#   3.1 (linear regression), 4.1 (softmax regression), 5.3 (backpropagation) and 7.2
#   (convolutions for images). Cambridge University Press.
