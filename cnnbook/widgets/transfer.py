"""How much is pretraining worth in labels? Accuracy against labelled images per class."""
from __future__ import annotations

import ipywidgets as widgets
import pandas as pd

from cnnbook.transfer.curves import explore_label_budget
from cnnbook.widgets.base import Explorer


class TransferCurveExplorer(Explorer):
    """Measured accuracy of each method (fine-tune, feature extraction, scratch, ...) against
    the labelled images per class. Pick a budget: the title says how many labels training
    from scratch would need to match transfer learning there (``state["scratch_needs"]``).

    ``table``: ``cnnbook.transfer.curves.label_table(rows)`` (index: budgets, columns: methods).
    """

    def __init__(self, table: pd.DataFrame, per_class: int | None = None, log_x: bool = True):
        if not isinstance(table, pd.DataFrame) or table.empty:
            raise ValueError("table must be a non-empty DataFrame from label_table(rows)")
        budgets = [int(b) for b in table.index]
        per_class = budgets[len(budgets) // 2] if per_class is None else int(per_class)
        if per_class not in budgets:
            raise ValueError(f"per_class must be one of the measured budgets {budgets}")
        self.table = table
        methods = [str(c) for c in table.columns]
        controls = {
            "methods": widgets.SelectMultiple(options=methods, value=tuple(methods),
                                              description="methods", rows=min(4, len(methods))),
            "per_class": widgets.SelectionSlider(options=budgets, value=per_class,
                                                 description="labels/class",
                                                 continuous_update=False),
            "log_x": widgets.Checkbox(value=log_x, description="log scale"),
        }
        super().__init__(controls)

    def compute(self, methods, per_class, log_x):
        return explore_label_budget(self.table, list(methods), int(per_class), bool(log_x))
