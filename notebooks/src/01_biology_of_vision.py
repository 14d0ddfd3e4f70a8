# %% [markdown]
# # 1. Biology of vision: from cat neurons to convolutions
#
# Convolutional networks did not come out of nowhere. Their two basic operations,
# a small filter slid over the whole image and a pooling step that forgets exactly where
# a feature was, are models of two kinds of neurons that David Hubel and Torsten Wiesel
# found in the visual cortex of cats around 1960. This chapter builds those model neurons
# in PyTorch and measures what the physiologists measured.
#
# **What you will learn**
#
# * what Hubel and Wiesel discovered: local receptive fields, orientation selectivity,
#   simple and complex cells, and a hierarchy of visual areas;
# * how to model a simple cell as a **Gabor filter**, built step by step from a grid of
#   coordinates;
# * how to measure an **orientation tuning curve** with gratings, and its preferred
#   orientation and bandwidth;
# * why a **complex cell** that pools simple cells over positions responds to a pattern
#   wherever it falls, and how to put a number on that invariance;
# * how a bank of model cells sees a real photograph;
# * how simple cells, complex cells and the hierarchy map onto convolution, pooling and
#   depth, and what that mapping leaves out.

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {  # no training here: the knobs set the photo size and how finely we measure
    "smoke": dict(image_size=128, widget_size=128, n_orientations=36, n_phases=8, n_shifts=16),
    "cpu":   dict(image_size=256, widget_size=192, n_orientations=72, n_phases=16, n_shifts=32),
    "full":  dict(image_size=512, widget_size=256, n_orientations=180, n_phases=32, n_shifts=64),
}

# %%
import cnnbook
cfg = cnnbook.settings(PROFILE, KNOBS)

# %%
import math

import pandas as pd
import torch
from torch import nn

from cnnbook.photos import load_photo
from cnnbook.summary import layer_shapes, show_source
from cnnbook.viz import plot_functions, plot_kernels, show_images
from cnnbook.vision import (coefficient_of_variation, complex_cell, filter_image, gabor_bank,
                            gabor_kernel, grating, half_width_half_max, linear_response,
                            orientation_map, orientations, plot_orientation_map,
                            preferred_orientation, simple_cell, tuning_curve)

cnnbook.seed_everything(0)
print(f"profile {cfg.profile}: {cfg}")

# %% [markdown]
# ## 1.1 What Hubel and Wiesel found
#
# In the late 1950s Hubel and Wiesel lowered a fine electrode into the primary visual
# cortex (V1, the *striate cortex*) of anaesthetised cats, listened to the spikes of one
# neuron at a time, and projected spots and bars of light onto a screen in front of the
# animal. Their reports (1959, 1962) changed how we think about vision:
#
# * **Local receptive fields.** Each neuron watches only a small patch of the visual
#   field, its *receptive field*. Light elsewhere leaves it silent. Neighbouring neurons
#   watch neighbouring patches, so the whole cortex covers the whole field of view.
# * **Orientation selectivity.** Spots of light hardly drove most cells. The
#   breakthrough came by accident: a cell fired vigorously while they slid a glass slide
#   into the projector, because the faint *edge* of the slide swept across its receptive
#   field at just the right angle. Most V1 cells prefer a bar or an edge at one
#   particular orientation and answer less and less as the bar is turned away from it.
# * **Simple cells** have receptive fields split into side-by-side excitatory ("ON") and
#   inhibitory ("OFF") stripes. Their response is close to a weighted sum of the light in
#   the field, so the bar must sit at the right position.
# * **Complex cells** are just as picky about orientation but forgive position: the
#   bar may lie anywhere in a larger receptive field. Hubel and Wiesel proposed that a
#   complex cell collects the outputs of many simple cells with the same preferred
#   orientation at neighbouring positions.
#
# Beyond V1 the signal travels along the *ventral stream* **V1 → V2 → V4 → IT**
# (inferotemporal cortex). At each stage the receptive fields grow and the preferred
# stimuli become more complex: oriented edges in V1, contours and textures in V2, curved
# shapes in V4, whole objects and faces in IT. Hubel and Wiesel shared the 1981 Nobel
# Prize in Physiology or Medicine (with Roger Sperry) for this work on information
# processing in the visual system.
#
# In 1980 Kunihiko Fukushima turned the idea into a machine, the **Neocognitron**: layers
# of *S-cells* (simple: feature detectors, the same detector repeated at every position)
# alternate with layers of *C-cells* (complex: each pools a neighbourhood of S-cells, so
# a small shift of the input does not change its output). Stacking S/C pairs gave
# detectors for ever larger patterns that tolerate distortions. The Neocognitron learned
# without labels; in 1989 Yann LeCun and colleagues trained the same architecture, now
# called a **convolutional network**, end to end with backpropagation to read handwritten
# ZIP codes ([chapter 05](05_lenet.ipynb)).
#
# The rest of this chapter builds the pieces in code: a simple cell, the stimuli to test
# it, a complex cell, and a tiny "V1" made of PyTorch layers.

# %% [markdown]
# ## 1.2 A receptive field is a weighted sum
#
# A simple cell behaves, to a first approximation, like a *linear filter followed by a
# threshold*: it multiplies the light at each point of its receptive field by a weight
# (positive on the ON stripes, negative on the OFF stripes), adds everything up, and fires
# at a rate proportional to the sum when the sum is positive. A firing rate cannot be
# negative, so the negative part is cut off ("half-wave rectification"):
#
# $$r = \max\Big(0, \sum_{i,j} w_{ij}\, s_{ij}\Big).$$
#
# That is exactly one output pixel of a convolution followed by a ReLU. Which weights
# $w$ does a real simple cell use? Measured receptive fields are fitted very well by
# **Gabor functions** (Marčelja 1980; Jones and Palmer 1987): a cosine wave seen through a
# Gaussian window.

# %% [markdown]
# ## 1.3 A simple cell as a Gabor filter, step by step
#
# The Gabor filter with orientation $\theta$, wavelength $\lambda$, width $\sigma$,
# aspect ratio $\gamma$ and phase $\psi$ is
#
# $$g(x, y) = \exp\!\Big(-\frac{x'^2 + \gamma^2 y'^2}{2\sigma^2}\Big)\,
#   \cos\!\Big(2\pi \frac{x'}{\lambda} + \psi\Big),\qquad
#   x' = x\cos\theta + y\sin\theta,\quad y' = -x\sin\theta + y\cos\theta .$$
#
# Our sources use a 9×9 kernel with $\sigma = 2$, $\lambda = 4$ and $\gamma = 0.5$; we
# keep those settings throughout. We build the kernel in four small steps, turned by
# $\theta = 30°$ so that the rotation is visible.
#
# **Step 1: a grid of coordinates.** The kernel is centred on its middle pixel. We let $x$
# grow to the right and $y$ grow *upwards* (row numbers grow downwards, hence the
# `flip`), so that angles turn counter-clockwise as on paper.

# %%
size, sigma, wavelength, gamma = 9, 2.0, 4.0, 0.5
theta = math.radians(30)

r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2  # -4, -3, ..., 4
y, x = torch.meshgrid(r.flip(0), r, indexing="ij")  # y = 4 on the top row, -4 at the bottom
print("x, first row:    ", x[0].tolist())
print("y, first column: ", y[:, 0].tolist())

# %% [markdown]
# **Step 2: rotate.** $x'$ is the coordinate along the direction $\theta$, $y'$ the one
# perpendicular to it. The cosine will vary along $x'$, so the stripes of the kernel run
# along $y'$, at $\theta + 90°$. Keep this convention in mind: *$\theta$ is the
# direction across the stripes*; a cell with $\theta = 0$ likes vertical bars.

# %%
x_rot = x * math.cos(theta) + y * math.sin(theta)
y_rot = -x * math.sin(theta) + y * math.cos(theta)
fig = show_images([x, y, x_rot, y_rot], titles=["x", "y (up)", "x' (θ=30°)", "y'"], ncols=4,
                  scale=2.0, suptitle="coordinates: black = most negative, white = most positive")

# %% [markdown]
# **Step 3: the envelope.** A Gaussian in the rotated frame limits the receptive field to
# a small patch. With $\gamma < 1$ it is longer along $y'$ (the stripes) than across:
# its standard deviation is $\sigma$ across and $\sigma/\gamma$ along the stripes.
#
# **Step 4: the carrier.** A cosine along $x'$ with wavelength $\lambda$ pixels makes the
# alternating ON and OFF stripes. The kernel is their product.

# %%
envelope = torch.exp(-(x_rot**2 + gamma**2 * y_rot**2) / (2 * sigma**2))
carrier = torch.cos(2 * math.pi * x_rot / wavelength)
kernel = envelope * carrier
fig = show_images([envelope, carrier, kernel], titles=["envelope", "carrier", "kernel = product"],
                  ncols=3, scale=2.4)

# %% [markdown]
# The same recipe, with input checks, a phase $\psi$ and an option to remove the response
# to uniform light, is `cnnbook.vision.gabor_kernel`. Every parameter may also be a tensor,
# which gives a whole bank of kernels in one call (broadcasting over the trailing grid).

# %%
show_source(gabor_kernel);

# %%
assert torch.allclose(kernel, gabor_kernel(size, sigma, theta, wavelength, gamma))
print("our step-by-step kernel equals gabor_kernel:",
      torch.allclose(kernel, gabor_kernel(size, sigma, theta, wavelength, gamma)))

# %% [markdown]
# `zero_mean=True` deserves a word. A real simple cell hardly responds to a uniformly lit
# screen: its ON and OFF regions balance. The raw Gabor formula does not quite balance,
# especially for long wavelengths, where one bright stripe dominates the window. The cell
# below prints the response of two kernels to a uniform grey patch (all pixels 1) before
# and after the correction, which subtracts a multiple of the envelope so the kernel stays
# local.

# %%
flat = torch.ones(9, 9)
for lam in (4.0, 8.0):
    raw = linear_response(flat, gabor_kernel(wavelength=lam))
    balanced = linear_response(flat, gabor_kernel(wavelength=lam, zero_mean=True))
    print(f"wavelength {lam:.0f}: response to uniform light {float(raw):+.3f} raw, "
          f"{float(balanced):+.1e} zero-mean")

# %% [markdown]
# ### A bank of cells
#
# V1 holds cells for every orientation and for a range of wavelengths (spatial
# frequencies) at every position of the visual field. `gabor_bank` builds such a family.
# Below, the columns run through 8 orientations and the rows through three wavelengths,
# with $\sigma$ in proportion to $\lambda$ so each kernel shows the same number of stripes.
# Red is a positive weight (ON), blue a negative one (OFF).

# %%
wavelengths = (4.0, 6.0, 8.0)
bank = gabor_bank(orientations(8), wavelengths, size=21, sigma=[lam / 2 for lam in wavelengths])
print("bank shape:", tuple(bank.shape))
fig = plot_kernels(bank, ncols=8, scale=1.1,
                   title="θ = 0°, 22.5°, ..., 157.5° (columns); λ = 4, 6, 8 px (rows)")

# %% [markdown]
# ## 1.4 Orientation tuning, measured on gratings
#
# To characterise a cell, physiologists drift a **sinusoidal grating** over its receptive
# field and count spikes, for one orientation after another. `grating` makes the same
# stimulus, with the same angle convention as the kernels: a grating at $\theta$ matches
# the stripes of a cell with that $\theta$.

# %%
fig = show_images(grating(33, orientations(8), 8.0),
                  titles=[f"θ={d:.1f}°" for d in torch.rad2deg(orientations(8)).tolist()],
                  ncols=8, scale=1.3)

# %% [markdown]
# A model simple cell looks at the centre of the stimulus: `linear_response` is the
# weighted sum, `simple_cell` rectifies it.

# %%
show_source(simple_cell);

# %% [markdown]
# `tuning_curve` shows each grating at `phases` evenly spaced phases, a full cycle of the
# drift, and averages the rectified responses, just as a recording averages the spike
# rate over the drift. We measure four cells, preferring 0°, 45°, 90° and 135°, at
# `cfg.n_orientations` stimulus orientations covering 0° to 180° (orientation repeats
# every 180°: a bar turned by half a turn is the same bar).

# %%
show_source(tuning_curve);

# %%
thetas = orientations(cfg.n_orientations)
cells = gabor_bank(orientations(4))  # the sources' settings, 4 preferred orientations
curves = tuning_curve(cells, thetas, wavelength=4.0, phases=cfg.n_phases)
degrees = torch.rad2deg(thetas)
fig = plot_functions(degrees, {f"cell θ={d:.0f}°": c for d, c in
                               zip(torch.rad2deg(orientations(4)).tolist(), curves)},
                     title="orientation tuning of four model simple cells",
                     xlabel="grating orientation (degrees)", ylabel="mean rate")

# %% [markdown]
# Two numbers summarise a tuning curve: the **preferred orientation** (where the curve
# peaks) and the **bandwidth**, here the half-width at half maximum (HWHM): how far the
# grating may turn before the response drops to half its peak. `half_width_half_max`
# finds the two half-height crossings by linear interpolation and averages them.

# %%
hwhm = half_width_half_max(curves, thetas)
table = pd.DataFrame({
    "cell θ (deg)": torch.rad2deg(orientations(4)).round().tolist(),
    "preferred (deg)": torch.rad2deg(preferred_orientation(curves, thetas)).tolist(),
    "HWHM (deg)": torch.rad2deg(hwhm).tolist(),
    "orthogonal / peak": [float(c[(int(c.argmax()) + len(c) // 2) % len(c)] / c.max())
                          for c in curves],
}).round(3)
table

# %%
step = math.pi / cfg.n_orientations
assert torch.allclose(preferred_orientation(curves, thetas), orientations(4), atol=step / 2)
assert bool((table["orthogonal / peak"] < 0.1).all())
print(f"every cell peaks at its own θ (to within the {math.degrees(step):.1f}° sampling step); "
      f"HWHM from {table['HWHM (deg)'].min():.1f}° to {table['HWHM (deg)'].max():.1f}°")

# %% [markdown]
# The table confirms what Hubel and Wiesel saw: each cell answers best to its own
# orientation and barely at all to the orthogonal one (the last column). The diagonal
# cells' half-widths differ a little from those of the vertical and horizontal cells,
# because a square 9×9 grid is not quite the same when turned by 45°.
#
# What sets the bandwidth? A grating turned away from the preferred orientation by an
# angle $\Delta$ still matches the stripes at the centre of the receptive field, but
# along the stripes it slides out of step: at a distance $\lambda / (2 \sin \Delta)$
# from the centre it is bright where the cell expects dark. An envelope that is long along the stripes
# ($\gamma < 1$, large $\sigma$) notices the mismatch sooner, so the cell is more sharply
# tuned. The 9×9 window cuts that long envelope short (its standard deviation along the
# stripes, $\sigma/\gamma = 4$ pixels, reaches the edge of the kernel), which widens the
# curve; exercise 2 asks you to measure the bandwidth without that truncation and compare
# it with a formula.

# %% [markdown]
# ## 1.5 Complex cells: pooling buys position invariance
#
# A simple cell is picky about *position* too. Drift a grating at the preferred
# orientation across its receptive field: the response rises while a bright stripe sits
# on the ON region and falls to zero when a dark stripe does. A complex cell, in Hubel and
# Wiesel's proposal, takes the **maximum over a neighbourhood of simple cells** that share
# the orientation but sit at different positions; one of them is always well aligned.
# This is exactly **max pooling**.

# %%
show_source(complex_cell);

# %% [markdown]
# We shift a grating at the preferred orientation (θ = 0°, λ = 4 pixels) through one full
# period in `cfg.n_shifts` steps, and record a simple cell and a complex cell pooling a
# 4×4 grid of simple cells (4 pixels: one wavelength). Shifting by $d$ pixels to the
# right changes the grating's phase by $-2\pi d / \lambda$.

# %%
cell = gabor_kernel()  # θ = 0, the sources' settings
pool = 4
shifts = torch.arange(cfg.n_shifts) * (4.0 / cfg.n_shifts)  # pixels, one period of λ = 4
phase = -2 * math.pi * shifts / 4.0
simple_rates = simple_cell(grating(9, 0.0, 4.0, phase), cell)
complex_rates = complex_cell(grating(9 + pool - 1, 0.0, 4.0, phase), cell, pool)
fig = plot_functions(shifts, {"simple cell": simple_rates,
                              f"complex cell (max over {pool}x{pool})": complex_rates},
                     title="response while the grating moves", xlabel="grating shift (pixels)",
                     ylabel="rate")

# %% [markdown]
# The picture shows the simple cell switching on and off while the complex cell hardly
# changes. To put a number on it we use the **coefficient of variation** of the response
# over all shifts, its standard deviation divided by its mean: 0 means perfectly
# invariant.

# %%
cv_simple = float(coefficient_of_variation(simple_rates))
cv_complex = float(coefficient_of_variation(complex_rates))
print(f"coefficient of variation over shifts: simple cell {cv_simple:.3f}, "
      f"complex cell {cv_complex:.3f} ({cv_simple / cv_complex:.1f} times smaller)")
assert cv_complex < cv_simple / 5

# %% [markdown]
# How large must the pool be? The next cell repeats the measurement for pools of 1 to 8
# positions. A pool of 1 is a single simple cell.

# %%
rows = []
for p in range(1, 9):
    rates = complex_cell(grating(9 + p - 1, 0.0, 4.0, phase), cell, p)
    rows.append({"pool": p, "CV over shifts": float(coefficient_of_variation(rates)),
                 "mean rate": float(rates.mean())})
pools = pd.DataFrame(rows).round(3)
cv = pools["CV over shifts"]
assert (cv.diff().iloc[1:4] < 0).all() and (cv.iloc[3:] - cv.iloc[3]).abs().max() < 1e-3
pools

# %% [markdown]
# The variation falls as the pool grows and stops falling once the pool spans one
# wavelength (4 pixels): beyond that, every extra position duplicates one already in the
# pool, because the grating repeats. A complex cell that pools over a patch as wide as
# the stripes it likes is as invariant as max pooling can make it; the rest of the
# variation comes from sampling the phase at only whole-pixel positions. Exercise 3
# removes it with a different pooling rule, the *energy model*.
#
# Pooling over positions does **not** pool over orientations: the complex cell is still
# orientation-selective, as the cell below measures with a grating turned by 90°.

# %%
orthogonal_rates = complex_cell(grating(9 + pool - 1, math.pi / 2, 4.0, phase), cell, pool)
print(f"complex cell, mean rate: preferred grating {float(complex_rates.mean()):.3f}, "
      f"orthogonal grating {float(orthogonal_rates.mean()):.3f}")
assert float(orthogonal_rates.mean()) < 0.1 * float(complex_rates.mean())

# %% [markdown]
# ## 1.6 A bank of simple cells looks at a photograph
#
# Now put a cell of every orientation at every pixel of a real photograph, the
# *cameraman*. Sliding one kernel over the image is a convolution, so a bank of 8
# kernels gives 8 response maps (`filter_image`, a convolution with 8 output channels and
# fixed weights). We use zero-mean kernels so that brightness alone does not drive the
# cells, and we take the absolute value of each response: a pair of cells with opposite
# signs (one ON-centre, one OFF-centre) together report a dark bar as well as a bright one.

# %%
photo = load_photo("camera", size=cfg.image_size)
bank_thetas = orientations(8)
v1_bank = gabor_bank(bank_thetas, zero_mean=True)
responses = filter_image(photo, v1_bank).abs()
print("photo", tuple(photo.shape), "-> responses", tuple(responses.shape))
fig = show_images(responses, titles=[f"θ={d:.1f}°" for d in torch.rad2deg(bank_thetas).tolist()],
                  ncols=4, scale=2.4, cmap="magma")

# %% [markdown]
# Each map lights up where the photo has stripes or edges across its own $\theta$:
# the θ = 0° map (vertical bars) picks out the tripod legs, the θ = 90° map (horizontal
# bars) the horizon and the buildings. An **orientation map** keeps, at each pixel, the
# orientation of the most active cell (colour) and its response (brightness).

# %%
theta_map, strength = orientation_map(responses, bank_thetas)
fig = plot_orientation_map(photo, theta_map, strength)

# %% [markdown]
# The fine stripes inside each coloured band come from the simple cells themselves: as a
# cell's receptive field slides across an edge, its ON and OFF regions take turns, so its
# response rises and falls. Complex cells smooth this ripple away (section 1.5 and
# exercise 3).

# %% [markdown]
# Which orientations dominate this photo? Among the 10% of pixels with the strongest
# response, the cell below counts how often each orientation wins, and prints the winner.

# %%
strong = strength >= strength.quantile(0.9)
winners = torch.bincount(torch.round(theta_map[strong] / (math.pi / 8)).long() % 8, minlength=8)
share = pd.Series((winners / winners.sum()).tolist(),
                  index=[f"{d:.1f}°" for d in torch.rad2deg(bank_thetas).tolist()],
                  name="share of strong pixels").round(3)
print("most frequent orientation:", share.idxmax())
share

# %% [markdown]
# The winner printed above is within one step (22.5°) of θ = 0°, the cells with
# vertical stripes: the tripod legs and the man's upright outline are nearly vertical.
# The θ = 90° cells (horizontal stripes) respond mostly along the horizon and the
# buildings, as their map above shows.

# %%
assert share.idxmax() in ("0.0°", "22.5°", "157.5°")

# %% [markdown]
# ## 1.7 Explore: a Gabor cell on a photograph
#
# Move the sliders: orientation θ, wavelength λ, envelope width σ, aspect γ, phase ψ
# (0°: a bar detector, 90°: an edge detector) and kernel size, on any of the bundled
# photographs. The picture shows the photo, the kernel (red: ON, blue: OFF) and the
# response (red: positive, blue: negative). Things to try: turn θ and watch different
# edges light up; make λ large on `brick` or `text`; set σ to 0 to see the error message.

# %%
from cnnbook.widgets.gabor import GaborExplorer

explorer = GaborExplorer(photo="camera", size=cfg.widget_size)
explorer

# %% [markdown]
# ## 1.8 From the visual cortex to a CNN
#
# Put the pieces side by side:
#
# | biology | Neocognitron (1980) | CNN | in this chapter |
# |---|---|---|---|
# | receptive field: a small patch of the visual field | local connections of an S-cell | kernel size, e.g. 9×9 | `gabor_kernel(9, ...)` |
# | simple cell: weighted sum of light, then a threshold | S-cell | convolution + ReLU | `simple_cell` |
# | the same kind of cell at every position | an S-plane of identical S-cells | weight sharing: one kernel slid over the image | `filter_image` |
# | cells for every orientation and wavelength | several S-planes | output channels | `gabor_bank` |
# | complex cell: pools simple cells over positions | C-cell | max pooling | `complex_cell` |
# | hierarchy V1 → V2 → V4 → IT, growing receptive fields | stacked S/C layers | depth: stacked conv/pool blocks | chapters [05](05_lenet.ipynb)-[12](12_densenet.ipynb) |
# | receptive fields learned from experience | unsupervised self-organisation | backpropagation | chapters [04](04_losses_backprop.ipynb)-[06](06_alexnet.ipynb) |
#
# The first row of a CNN is our bank of cells, literally. The next cell writes the Gabor
# bank into the weights of an `nn.Conv2d`, adds a ReLU and a max pooling, and prints the
# shapes: a one-block "V1" in three PyTorch layers.

# %%
conv = nn.Conv2d(1, len(v1_bank), kernel_size=9, padding=4, padding_mode="reflect", bias=False)
with torch.no_grad():
    conv.weight.copy_(v1_bank[:, None])  # (8, 1, 9, 9): 8 simple cells per position
v1 = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(4))  # simple cells, then complex cells
X = photo[None, None]  # a batch of one grey image
layer_shapes(v1, X)

# %%
fig = show_images(v1(X).detach()[0], ncols=4, scale=2.2, cmap="viridis",
                  titles=[f"θ={d:.1f}°" for d in torch.rad2deg(bank_thetas).tolist()],
                  suptitle="complex-cell maps: the bank after ReLU and 4x4 max pooling")

# %% [markdown]
# Does the pooled layer forgive small shifts of a real photo, as the complex cell forgave
# shifts of a grating? `cnnbook.equivariance.representation_change` ([chapter 03](03_pooling_activations.ipynb) uses it
# too) shifts the photo by a few pixels and measures how much a layer's output changes,
# relative to its size ($\lVert f(\text{shifted}) - f(X)\rVert / \lVert f(X)\rVert$).

# %%
from cnnbook.equivariance import representation_change

simple_layer = v1[:2]  # conv + ReLU: simple cells
rows = [{"shift (px)": d,
         "simple cells": representation_change(simple_layer, X, 0, d),
         "after 4x4 max pool": representation_change(v1, X, 0, d)} for d in (1, 2, 3)]
shift_table = pd.DataFrame(rows).round(3)
shift_table

# %%
assert bool((shift_table["after 4x4 max pool"] < shift_table["simple cells"]).all())
assert shift_table["after 4x4 max pool"].is_monotonic_increasing

# %% [markdown]
# The pooled maps change less than the simple-cell maps for every shift in the table,
# but on a photo the effect is partial: the pooled maps still change, and more so the
# larger the shift, because an edge that moves from one pooling window into the next
# changes the output of both windows. Real CNNs stack several such blocks, so the tolerance grows
# with depth, as the receptive fields do along V1 → V2 → V4 → IT.
#
# One difference matters more than all the others: **we chose these weights; a CNN
# learns them.** Remarkably, when a network is trained on natural images, many of its
# first-layer kernels come out looking like Gabor filters of various orientations and
# wavelengths. Olshausen and Field (1996) found the same with a purely statistical
# principle (sparse coding of natural images), and Krizhevsky, Sutskever and Hinton (2012)
# showed it for AlexNet's first layer. [Chapter 06](06_alexnet.ipynb) trains AlexNet and shows its
# learned first-layer kernels; [chapter 20](20_seeing_inside.ipynb) (section 3) puts the
# first-layer kernels of trained networks next to the Gabor bank of this chapter and
# measures how Gabor-like they are.
#
# The analogy has limits worth knowing: real neurons spike, adapt, receive feedback from
# higher areas and interact laterally; complex cells are better described by the energy
# model than by a hard max; and the brain does not learn by backpropagation in any
# straightforward sense. The CNN borrowed the *architecture*, not the biology.

# %% [markdown]
# ## Summary
#
# * V1 neurons have **local receptive fields** and are **orientation-selective**. Simple
#   cells are roughly linear filters with ON and OFF stripes; complex cells keep the
#   orientation preference but tolerate changes of position.
# * A simple cell is modelled by a **Gabor filter**: a Gaussian envelope times a cosine
#   carrier in rotated coordinates; with 9×9, σ = 2, λ = 4, γ = 0.5 it is a good
#   edge-and-bar detector.
# * Measured with gratings, the model cells have **tuning curves** peaking at their own
#   orientation; the half-width at half maximum quantifies their selectivity, and it
#   narrows as the envelope grows along the stripes.
# * A **complex cell** = max over simple cells at neighbouring positions. Its response to
#   a moving grating varies far less than a simple cell's (coefficient of variation), and
#   it stays orientation-selective.
# * simple cell → convolution + ReLU, same cell everywhere → weight sharing, complex cell →
#   pooling, hierarchy → depth. Fukushima's Neocognitron (1980) made that mapping a
#   machine; LeCun's CNNs (1989) learned the weights by backpropagation.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1: bars and edges
#
# With $\psi = 0$ the Gabor kernel is *even* (mirror-symmetric across its middle column,
# for θ = 0); with $\psi = \pi/2$ it is *odd* (antisymmetric). Make two 9×9 stimuli:
# a thin bright vertical `line` (1 on the middle column, 0 elsewhere) and a vertical step
# `edge` that is 0 on the left, 1 on the right and 0.5 on the middle column. Fill the
# dictionary `line_edge` with the four linear responses (`linear_response`, as floats) of
# the even and odd cells (θ = 0, the sources' settings) to the two stimuli, keyed
# `("even", "line")`, `("even", "edge")`, `("odd", "line")`, `("odd", "edge")`. Then
# explain in a comment why the even cell responds to lines and the odd one to edges.
# (Hint: write the edge as 0.5 plus an antisymmetric part.)

# %% nbgrader={"grade": false, "grade_id": "ex-01-bars-edges", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
even_cell = gabor_kernel(psi=0.0)
odd_cell = gabor_kernel(psi=math.pi / 2)
line = torch.zeros(9, 9)
line[:, 4] = 1.0
edge = torch.zeros(9, 9)
edge[:, 5:] = 1.0
edge[:, 4] = 0.5
line_edge = {(name, s_name): float(linear_response(s, k))
             for name, k in (("even", even_cell), ("odd", odd_cell))
             for s_name, s in (("line", line), ("edge", edge))}
# The edge is 0.5 (uniform) plus 0.5 * sign(x), an odd function. An even kernel times an
# odd stimulus sums to zero, so the even cell only sees the uniform half (its tiny DC
# response); the line is even and matches its central ON stripe. For the odd kernel it is
# the other way round: the line sits on its zero crossing, the edge matches its halves.
### END SOLUTION
line_edge

# %% nbgrader={"grade": true, "grade_id": "ex-01-bars-edges-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert set(line_edge) == {("even", "line"), ("even", "edge"), ("odd", "line"), ("odd", "edge")}
assert abs(line_edge[("even", "line")]) > 5 * abs(line_edge[("even", "edge")])
assert abs(line_edge[("odd", "edge")]) > 5 * abs(line_edge[("odd", "line")])
assert abs(line_edge[("odd", "line")]) < 1e-4
assert abs(line_edge[("even", "line")] - float(gabor_kernel()[:, 4].sum())) < 1e-4
### BEGIN HIDDEN TESTS
from cnnbook.grading import same
from cnnbook.vision import gabor_kernel as _gk, linear_response as _lr
_line = torch.zeros(9, 9)
_line[:, 4] = 1.0
_edge = torch.zeros(9, 9)
_edge[:, 5:] = 1.0
_edge[:, 4] = 0.5
_want = {(c, s): float(_lr(st, k)) for c, k in (("even", _gk(psi=0.0)), ("odd", _gk(psi=math.pi / 2)))
         for s, st in (("line", _line), ("edge", _edge))}
same(line_edge, _want, atol=1e-4, what="line_edge")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: how the bandwidth depends on σ
#
# Write `hwhm_degrees(sigma)`: the half-width at half maximum, in degrees, of the tuning
# curve of a cell with θ = 0, λ = 4, γ = 0.5 and width `sigma`, measured with
# `tuning_curve` at 72 orientations. Make the kernel large enough that the envelope is
# not cut off: size $2\lceil 3\sigma/\gamma \rceil + 1$. Then compare your numbers for
# σ = 1, 2 and 4 with the prediction from the filter's Fourier transform (a Gaussian
# with standard deviation $\gamma / (2\pi\sigma)$ across the preferred direction):
# $\sin(\text{HWHM}) \approx \gamma \lambda \sqrt{2 \ln 2} / (2 \pi \sigma)$.
# How does the bandwidth scale with σ? Why is it wider with the 9×9 kernel of section 1.4?

# %% nbgrader={"grade": false, "grade_id": "ex-01-bandwidth", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hwhm_degrees(sigma, wavelength=4.0, gamma=0.5, n=72):
    """The tuning half-width (degrees) of an untruncated Gabor cell of width ``sigma``."""
    ### BEGIN SOLUTION
    k = 2 * math.ceil(3 * sigma / gamma) + 1
    angles = orientations(n)
    curve = tuning_curve(gabor_kernel(k, sigma=sigma, wavelength=wavelength, gamma=gamma),
                         angles, wavelength)
    return math.degrees(float(half_width_half_max(curve, angles)))
    ### END SOLUTION


for s in (1.0, 2.0, 4.0):
    print(f"sigma {s}: HWHM {hwhm_degrees(s):.1f} degrees")

# %% nbgrader={"grade": true, "grade_id": "ex-01-bandwidth-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
measured = [hwhm_degrees(s) for s in (1.0, 2.0, 4.0)]
predicted = [math.degrees(math.asin(0.5 * 4 * math.sqrt(2 * math.log(2)) / (2 * math.pi * s)))
             for s in (1.0, 2.0, 4.0)]
assert measured[0] > measured[1] > measured[2]
for m, p in zip(measured, predicted):
    assert abs(m - p) < 0.1 * p, (m, p)
assert 1.6 < measured[0] / measured[1] < 2.4  # roughly 1 / sigma
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.vision import (gabor_kernel as _gk, half_width_half_max as _hw, orientations as _or,
                            tuning_curve as _tc)


def _ref(sigma, wavelength=4.0, gamma=0.5, n=72):
    _k = 2 * math.ceil(3 * sigma / gamma) + 1
    _a = _or(n)
    return math.degrees(float(_hw(_tc(_gk(_k, sigma=sigma, wavelength=wavelength, gamma=gamma), _a,
                                      wavelength), _a)))


_u = torch.rand(2, generator=generator(101)).tolist()
agrees(hwhm_degrees, _ref, [(1.3 + _u[0], 5.0, 0.6, 36), dict(sigma=1.1 + _u[1], n=48)], atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: an energy-model complex cell
#
# Adelson and Bergen (1985) proposed another complex cell: take two simple cells with the
# same orientation and wavelength but phases 90° apart (a *quadrature pair*: ψ = 0 and
# ψ = π/2), square their *linear* responses, add, and take the square root. Write
# `energy_cell(stimuli, theta)` that returns this response for stimuli (..., 9, 9) using
# the sources' settings. Check that its response to the moving grating of section 1.5
# varies even less than the max-pooling complex cell's, and explain why with the identity
# $\cos^2 + \sin^2 = 1$.

# %% nbgrader={"grade": false, "grade_id": "ex-01-energy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def energy_cell(stimuli, theta=0.0):
    """The response of an energy-model complex cell preferring orientation ``theta``."""
    ### BEGIN SOLUTION
    even = linear_response(stimuli, gabor_kernel(theta=theta, psi=0.0))
    odd = linear_response(stimuli, gabor_kernel(theta=theta, psi=math.pi / 2))
    return torch.sqrt(even**2 + odd**2)
    ### END SOLUTION


print(f"CV over shifts: energy cell "
      f"{float(coefficient_of_variation(energy_cell(grating(9, 0.0, 4.0, phase)))):.4f}")

# %% nbgrader={"grade": true, "grade_id": "ex-01-energy-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
test_phase = torch.arange(32) * (2 * math.pi / 32)
energy = energy_cell(grating(9, 0.0, 4.0, test_phase))
assert energy.shape == (32,)
max_pooled = complex_cell(grating(12, 0.0, 4.0, test_phase), gabor_kernel(), 4)
assert float(coefficient_of_variation(energy)) < 0.03
assert float(coefficient_of_variation(energy)) < float(coefficient_of_variation(max_pooled))
assert float(energy_cell(grating(9, math.pi / 2, 4.0, test_phase)).mean()) < 0.1 * float(energy.mean())
assert float(energy_cell(grating(9, 1.0, 4.0, test_phase), theta=1.0).mean()) > 0.9 * float(energy.mean())
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.vision import gabor_kernel as _gk, linear_response as _lr


def _ref(stimuli, theta=0.0):
    _e = _lr(stimuli, _gk(theta=theta, psi=0.0))
    _o = _lr(stimuli, _gk(theta=theta, psi=math.pi / 2))
    return torch.sqrt(_e ** 2 + _o ** 2)


_g = generator(102)
agrees(energy_cell, _ref, [(torch.rand(5, 9, 9, generator=_g), 0.7), (torch.randn(2, 3, 9, 9, generator=_g),),
                           (torch.rand(9, 9, generator=_g), -1.2)])
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4: spatial-frequency tuning
#
# V1 cells are tuned to the *wavelength* (spatial frequency) of a grating as well as to
# its orientation. Write `wavelength_tuning(kernel, wavelengths, theta=0.0)` that returns
# the mean rectified response (as `tuning_curve` computes it, 16 phases) to gratings at
# orientation `theta` for each wavelength in `wavelengths`, as a tensor. Plot it for the
# default cell and for a cell with λ = 8, σ = 4, size 25, over wavelengths from 2 to 16
# pixels. Where does each curve peak? Both cells have σ = λ/2: plot the curves against
# $\log_2 \lambda$ and explain why they are about equally wide in octaves.

# %% nbgrader={"grade": false, "grade_id": "ex-01-wavelength", "locked": false, "schema_version": 3, "solution": true, "task": false}
def wavelength_tuning(kernel, wavelengths, theta=0.0):
    """Mean rate of a cell to gratings at orientation ``theta``, one per wavelength."""
    ### BEGIN SOLUTION
    angle = torch.tensor([float(theta)])
    return torch.stack([tuning_curve(kernel, angle, float(w), phases=16)[0] for w in wavelengths])
    ### END SOLUTION


lams = torch.linspace(2, 16, 57)
fig = plot_functions(lams, {"cell λ=4": wavelength_tuning(gabor_kernel(), lams),
                            "cell λ=8": wavelength_tuning(gabor_kernel(25, sigma=4.0, wavelength=8.0), lams)},
                     xlabel="grating wavelength (pixels)", ylabel="mean rate",
                     title="spatial-frequency tuning")

# %% nbgrader={"grade": true, "grade_id": "ex-01-wavelength-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grid = torch.linspace(2, 16, 57)
small = wavelength_tuning(gabor_kernel(), grid)
large = wavelength_tuning(gabor_kernel(25, sigma=4.0, wavelength=8.0), grid)
assert small.shape == large.shape == (57,)
assert 3.5 <= float(grid[small.argmax()]) <= 4.75
assert 7.0 <= float(grid[large.argmax()]) <= 9.5
tilted = wavelength_tuning(gabor_kernel(theta=1.0), grid, theta=1.0)
assert 3.5 <= float(grid[tilted.argmax()]) <= 4.75
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.vision import gabor_kernel as _gk, tuning_curve as _tc


def _ref(kernel, wavelengths, theta=0.0):
    _a = torch.tensor([float(theta)])
    return torch.stack([_tc(kernel, _a, float(w), phases=16)[0] for w in wavelengths])


_u = torch.rand(3, generator=generator(103))
agrees(wavelength_tuning, _ref,
       [(_gk(11, sigma=2.5, wavelength=5.0, theta=0.4), (2.5 + 10 * _u).tolist(), 0.4),
        (_gk(theta=1.3), torch.tensor([3.0, 4.5 + float(_u[0]), 7.0]), 1.3)], atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# * D. H. Hubel and T. N. Wiesel (1959). Receptive fields of single neurones in the cat's
#   striate cortex. *Journal of Physiology* 148, 574-591.
# * D. H. Hubel and T. N. Wiesel (1962). Receptive fields, binocular interaction and
#   functional architecture in the cat's visual cortex. *Journal of Physiology* 160,
#   106-154.
# * D. H. Hubel and T. N. Wiesel (1968). Receptive fields and functional architecture of
#   monkey striate cortex. *Journal of Physiology* 195, 215-243.
# * S. Marčelja (1980). Mathematical description of the responses of simple cortical
#   cells. *Journal of the Optical Society of America* 70, 1297-1300.
# * K. Fukushima (1980). Neocognitron: a self-organizing neural network model for a
#   mechanism of pattern recognition unaffected by shift in position. *Biological
#   Cybernetics* 36, 193-202.
# * J. G. Daugman (1985). Uncertainty relation for resolution in space, spatial frequency,
#   and orientation optimized by two-dimensional visual cortical filters. *JOSA A* 2,
#   1160-1169.
# * E. H. Adelson and J. R. Bergen (1985). Spatiotemporal energy models for the
#   perception of motion. *JOSA A* 2, 284-299.
# * J. P. Jones and L. A. Palmer (1987). An evaluation of the two-dimensional Gabor filter
#   model of simple receptive fields in cat striate cortex. *Journal of Neurophysiology*
#   58, 1233-1258.
# * Y. LeCun, B. Boser, J. S. Denker, D. Henderson, R. E. Howard, W. Hubbard and
#   L. D. Jackel (1989). Backpropagation applied to handwritten zip code recognition.
#   *Neural Computation* 1, 541-551.
# * D. J. Felleman and D. C. Van Essen (1991). Distributed hierarchical processing in the
#   primate cerebral cortex. *Cerebral Cortex* 1, 1-47.
# * B. A. Olshausen and D. J. Field (1996). Emergence of simple-cell receptive field
#   properties by learning a sparse code for natural images. *Nature* 381, 607-609.
# * M. Riesenhuber and T. Poggio (1999). Hierarchical models of object recognition in
#   cortex. *Nature Neuroscience* 2, 1019-1025.
# * A. Krizhevsky, I. Sutskever and G. E. Hinton (2012). ImageNet classification with
#   deep convolutional neural networks. *NeurIPS* 25.
