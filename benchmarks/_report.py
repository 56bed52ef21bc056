"""Shared output helper for the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

import json
import os


def write_summary(out_dir, summary, rows):
    """Write ``results.json`` (the summary) and ``results.csv`` (one line per row dict)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    cols = list(rows[0])
    with open(os.path.join(out_dir, "results.csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for row in rows:
            f.write(",".join("" if row[c] is None else str(row[c]) for c in cols) + "\n")
