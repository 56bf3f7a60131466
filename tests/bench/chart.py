#!/usr/bin/env python3
"""Draws pglease-bench's JSON as one SVG: each whole suite's wall-clock time and its
time-to-database p50 (W workers, each test's own work), and the single-scenario runs'
time-to-database p50 per template and W.

Usage: tests/bench/chart.py RESULTS.json CHART.svg   (or CHART.png)

Needs matplotlib (Debian: python3-matplotlib, which deploy/install-deps.sh installs).
"""

import json
import math
import sys

import matplotlib

matplotlib.use("Agg")  # no display; writes SVG or PNG by the file name
import matplotlib.pyplot as plt  # noqa: E402

# One colour per kind, the status quo in greys, pglease in blues and greens.
COLOURS = {
    "durable clone per test": "#7f7f7f",
    "durable schema per test": "#bdbdbd",
    "pglease recycle (reset)": "#1f77b4",
    "pglease recycle (reclone)": "#9ecae1",
    "pglease sticky reset": "#2ca02c",
}


def finite(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def log_floor(axes, values):
    """Bars on a log axis start a decade boundary below the smallest one, so each shows."""
    positive = [v for v in values if v > 0]
    if positive:
        axes.set_ylim(bottom=10 ** math.floor(math.log10(min(positive))))


def grouped_bars(axes, groups, kinds, value_of, ylabel, log=False):
    """Bars of value_of(kind, group) for every kind, side by side within each group."""
    width = 0.8 / max(len(kinds), 1)
    shown = []
    for k, kind in enumerate(kinds):
        xs, ys = [], []
        for g, group in enumerate(groups):
            value = value_of(kind, group)
            if finite(value):
                xs.append(g + (k - (len(kinds) - 1) / 2) * width)
                ys.append(value)
        bars = axes.bar(xs, ys, width, label=kind, color=COLOURS.get(kind))
        axes.bar_label(bars, fmt="%.3g", fontsize=6, padding=1)
        shown += ys
    axes.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=8)
    axes.set_ylabel(ylabel)
    if log:
        axes.set_yscale("log")
        log_floor(axes, shown)
        if shown:
            axes.set_ylim(top=max(shown) * 4)  # room for the labels and the legend
    elif shown:
        axes.set_ylim(top=max(shown) * 1.2)
    axes.grid(axis="y", alpha=0.3)


def suite_panels(fig, grid, suites):
    kinds = list(dict.fromkeys(s["label"] for s in suites))
    keys = sorted({(s["workers"], s["work_ms"]) for s in suites}, key=lambda k: (k[1], k[0]))
    groups = [(f"W={w}, {ms} ms tests", (w, ms)) for w, ms in keys]
    by = {(s["label"], s["workers"], s["work_ms"]): s for s in suites}

    def field(kind, group, get):
        s = by.get((kind, *group[1]))
        return get(s) if s else None

    tests = suites[0]["tests"]
    wall = fig.add_subplot(grid[0])
    grouped_bars(wall, groups, kinds, lambda k, g: field(k, g, lambda s: s["wall_seconds"]),
                 "suite wall clock (s)")
    wall.set_title(f"Whole suite of {tests} tests: wall clock from the server up "
                   "(lower is faster)", fontsize=10)
    wall.legend(fontsize=7, ncol=len(kinds))
    ttd = fig.add_subplot(grid[1])
    grouped_bars(ttd, groups, kinds, lambda k, g: field(k, g, lambda s: s["ttd_ms"]["p50"]),
                 "time-to-database p50 (ms, log)", log=True)
    ttd.set_title("Time-to-database p50 within those suites", fontsize=10)


def scenario_panel(axes, rows):
    labels = list(dict.fromkeys(r["scenario"] for r in rows))
    keys = list(dict.fromkeys((r["template"], r["workers"]) for r in rows))
    groups = [(f"{t}, W={w}", (t, w)) for t, w in keys]
    by = {(r["scenario"], r["template"], r["workers"]): r for r in rows}

    def value(label, group):
        r = by.get((label, *group[1]))
        return r["measured"]["ttd_ms"]["p50"] if r else None

    width = 0.8 / max(len(labels), 1)
    cmap = plt.get_cmap("tab20")
    shown = []
    for k, label in enumerate(labels):
        xs, ys = [], []
        for g, group in enumerate(groups):
            v = value(label, group)
            if finite(v) and v > 0:
                xs.append(g + (k - (len(labels) - 1) / 2) * width)
                ys.append(v)
        axes.bar(xs, ys, width, label=label, color=cmap(k % 20))
        shown += ys
    axes.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=8)
    axes.set_yscale("log")
    log_floor(axes, shown)
    if shown:
        axes.set_ylim(top=max(shown) * 30)  # room for the legend
    axes.set_ylabel("time-to-database p50 (ms, log)")
    axes.set_title("Single scenarios: steady state, no work of the test's own "
                   "(RAM-backed unless \"disk\")",
                   fontsize=10)
    axes.legend(fontsize=6, ncol=4)
    axes.grid(axis="y", alpha=0.3)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    with open(argv[1]) as f:
        results = json.load(f)
    suites = results.get("suites", [])
    rows = results.get("rows", [])
    panels = (2 if suites else 0) + (1 if rows else 0)
    if panels == 0:
        sys.exit(f"chart: {argv[1]} holds no suite and no scenario run")
    fig = plt.figure(figsize=(12, 4.2 * panels), layout="constrained")
    grid = fig.add_gridspec(panels, 1)
    if suites:
        suite_panels(fig, [grid[0], grid[1]], suites)
    if rows:
        scenario_panel(fig.add_subplot(grid[panels - 1]), rows)
    fig.suptitle("pglease-bench", fontsize=12)
    fig.savefig(argv[2])
    print(f"chart: wrote {argv[2]}")


if __name__ == "__main__":
    main(sys.argv)
