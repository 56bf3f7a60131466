#!/usr/bin/env python3
"""Prints pglease-bench's JSON as the Markdown tables of README.md's Performance section: the
whole suites with their ratios and targets, and the single scenarios.

Usage: tests/bench/tables.py RESULTS.json
"""

import json
import math
import sys


def finite(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def num(value, digits=1):
    if not finite(value):
        return ""
    if digits == 0 or abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def ratio(a, b):
    if not finite(a) or not finite(b) or not b:
        return None
    return a / b


def suites_table(suites):
    print("| suite | W | work | wall s | setup s | tests/s | TTD p50 | TTD p99 | × wall | × TTD p50 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in suites:
        over = s["over_durable_clone"]
        rate = s["tests_run"] / s["wall_seconds"] if s["wall_seconds"] else None
        print(f"| {s['label']} | {s['workers']} | {s['work_ms']} ms | {num(s['wall_seconds'], 2)} "
              f"| {num(s['setup_seconds'], 2)} | {num(rate)} | {num(s['ttd_ms']['p50'], 2)} "
              f"| {num(s['ttd_ms']['p99'], 1)} | {num(over['wall'])} | {num(over['ttd_p50'])} |")
    print()
    print("Targets (W = 4, 20 ms tests, against durable clone per test):")
    print()
    for s in suites:
        if s["kind"] in ("clone", "schema") or s["workers"] != 4 or s["work_ms"] != 20:
            continue
        over = s["over_durable_clone"]
        wall = over["wall"]
        ttd = over["ttd_p50"]
        wall_says = "holds" if wall is not None and wall >= 3 else "does not hold"
        ttd_says = "holds" if ttd is not None and ttd >= 20 else "does not hold"
        print(f"- {s['label']}: suite **{num(wall)}×** faster (≥ 3×: {wall_says}); "
              f"time-to-database p50 **{num(ttd)}×** (≥ 20×: {ttd_says})")


def scenarios_table(rows):
    by = {(r["template"], r["scenario"], r["workers"]): r for r in rows}
    print("| template | scenario | W | it/s | TTD p50 | TTD p99 | warm TTD p50 | lease p50 / p99 "
          "| CPU/it | × clone (warm) | ÷ ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["measured"]
        warm = r.get("warm")
        clone = by.get((r["template"], "clone per test", r["workers"]))
        ceiling = by.get((r["template"], "raw clone ceiling", r["workers"]))
        cpu = m["host_cpu_seconds"] * 1000 / m["iterations"] if m["iterations"] else None
        lease = (f"{num(warm['lease_call_ms']['p50'], 2)} / {num(warm['lease_call_ms']['p99'], 1)}"
                 if warm and finite(warm["lease_call_ms"]["p50"]) else "")
        x_clone = ""
        if clone and clone is not r:
            x_clone = num(ratio(clone["measured"]["ttd_ms"]["p50"], m["ttd_ms"]["p50"]))
            if warm:
                x_clone += f" ({num(ratio(clone['measured']['ttd_ms']['p50'], warm['ttd_ms']['p50']))})"
        elif clone is r:
            x_clone = "1.0"
        per_ceiling = (num(ratio(m["per_second"], ceiling["measured"]["per_second"]), 2)
                       if ceiling else "")
        print(f"| {r['template']} | {r['scenario']} | {r['workers']} | {num(m['per_second'])} "
              f"| {num(m['ttd_ms']['p50'], 2)} | {num(m['ttd_ms']['p99'], 1)} "
              f"| {num(warm['ttd_ms']['p50'], 2) if warm else ''} | {lease} | {num(cpu)} "
              f"| {x_clone} | {per_ceiling} |")


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    with open(argv[1]) as f:
        results = json.load(f)
    if results.get("suites"):
        suites_table(results["suites"])
        print()
    if results.get("rows"):
        scenarios_table(results["rows"])


if __name__ == "__main__":
    main(sys.argv)
