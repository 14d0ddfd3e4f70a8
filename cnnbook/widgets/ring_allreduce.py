"""RingAllReduceExplorer: a ring all-reduce step by step, ranks x chunks.

Controls -> ``cnnbook.train.ring`` (``contributions``, ``transfers``, ``traffic``) -> a grid
with one row per rank and one column per chunk of the gradient. A cell's shade and label
say how many ranks' gradients that copy of the chunk already sums; arrows show the chunks
travelling in the chosen step. The message under the grid gives the megabytes each rank
sends for a gradient of the chosen size, against a central rank that gathers everything.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from cnnbook.train.ring import contributions, num_steps, traffic, transfers
from cnnbook.widgets.base import Explorer, bounded_slider

_STYLE = {"description_width": "initial"}


def draw_ring(p: int, step: int, megabytes: float = 1.0):
    """The figure and numbers of the state *before* step ``step`` (``step = 2(p-1)``: done)."""
    total = num_steps(p)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= total:
        raise ValueError(f"with {p} ranks the ring has {total} steps: pick step 0 to {total}, "
                         f"got {step!r}")
    held = contributions(p, step)
    counts = np.array([[len(c) for c in row] for row in held])
    moves = transfers(p, step) if step < total else []
    sent = traffic(p, megabytes)
    fig, ax = plt.subplots(figsize=(1.1 * p + 2.5, 0.8 * p + 1.2))
    ax.imshow(counts / p, cmap="Blues", vmin=0, vmax=1.25)
    for r in range(p):
        for c in range(p):
            ax.text(c, r, f"{counts[r, c]}/{p}", ha="center", va="center", fontsize=9,
                    color="white" if counts[r, c] == p else "black")
    for src, dst, chunk, phase in moves:
        ax.annotate("", xy=(chunk + 0.25, dst - 0.25 if dst > src else dst + 0.25),
                    xytext=(chunk + 0.25, src), arrowprops=dict(
                        arrowstyle="->", color="tab:red" if phase == "reduce-scatter" else "tab:green",
                        lw=1.6, connectionstyle="arc3,rad=0.3"))
    ax.set_xticks(range(p), [f"chunk {c}" for c in range(p)], fontsize=8)
    ax.set_yticks(range(p), [f"rank {r}" for r in range(p)], fontsize=8)
    phase = moves[0][3] if moves else "finished"
    ax.set_title(f"before step {step + 1 if moves else total} of {total}: {phase}"
                 if moves else f"after all {total} steps: every rank holds the sum", fontsize=10)
    state = {"ranks": p, "step": step, "steps": total, "phase": phase,
             "complete_cells": int((counts == p).sum()), "moves": moves,
             "ring_mb_per_rank": sent["ring_per_rank"], "central_mb": sent["central_rank"]}
    return fig, state


class RingAllReduceExplorer(Explorer):
    """Ranks (2-8), the step, and the gradient's size in megabytes."""

    def __init__(self, ranks: int = 4, step: int = 0, megabytes: float = 1.1):
        controls = {
            "ranks": bounded_slider(widgets.IntSlider, ranks, 2, 8, 1, "ranks", style=_STYLE),
            "step": bounded_slider(widgets.IntSlider, step, 0, num_steps(8), 1,
                                   "step (before)", style=_STYLE),
            "megabytes": widgets.FloatText(value=megabytes, description="gradient MB",
                                           style=_STYLE, layout=widgets.Layout(width="200px")),
        }
        super().__init__(controls)

    def compute(self, ranks, step, megabytes):
        fig, state = draw_ring(int(ranks), int(step), megabytes)
        self.message_text = (f"each rank sends {state['ring_mb_per_rank']:.2f} MB around the ring; "
                             f"a central rank would send {state['central_mb']:.2f} MB")
        return fig, state

    def refresh(self) -> None:
        super().refresh()
        if not self.state.get("error"):
            self.message.value = self.message_text
