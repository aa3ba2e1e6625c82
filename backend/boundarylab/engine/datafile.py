"""A data set as a CSV file a person can open, edit and upload again.

Columns x1, x2, label, split ("train" or "test"), one row per point in the data set's own
order (datasets.all_points), coordinates in their shortest exact form (Python's repr, which
JavaScript's parseFloat reads back to the same double). Uploading the file as custom points
with the same dataset.seed and test_fraction therefore trains the same run.
"""

from __future__ import annotations

import csv
import io

from boundarylab.engine.config import DatasetConfig
from boundarylab.engine.datasets import all_points

CSV_COLUMNS = ("x1", "x2", "label", "split")


def dataset_csv(cfg: DatasetConfig) -> str:
    """The points of ``cfg`` as CSV text with a header row (see the module docstring)."""
    X, y, is_test = all_points(cfg)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for (x1, x2), label, test in zip(X.tolist(), y.tolist(), is_test.tolist(), strict=True):
        writer.writerow((repr(x1), repr(x2), label, "test" if test else "train"))
    return out.getvalue()
