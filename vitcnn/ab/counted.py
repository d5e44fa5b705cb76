"""`vitcnn ab --metric instructions`: each setting's instructions per call counted on both sides, no timing.

One Counter per side (vitcnn/workers/counting.py), both sides counting each setting at the same time (valgrind runs
a process on one core at a time, and a count does not depend on what runs beside it), then
`rules.compare_counted`: the verdicts are the instruction counts' (and the deterministic metrics beside them).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from vitcnn.ab import explaining
from vitcnn.ab.design import ABOptions
from vitcnn.ab.outputs import explanation_json, sides_json, verdict_json, write_outputs
from vitcnn.gate import rules, verdicts
from vitcnn.result import Result
from vitcnn.settings import invalid_reason
from vitcnn.workers import SideError
from vitcnn.workers.checkout import PROJECT_ROOT, Checkout
from vitcnn.workers.counting import Counter, count_all, counted_fields


def run(options: ABOptions) -> int:
    """`vitcnn ab --metric instructions`; exit 0 (no regression), 1 (a regression), 2 (a side cannot start)."""
    started = time.perf_counter()
    logs = Path(tempfile.mkdtemp(prefix="vitcnn-ab-logs-"))
    worker_args = options.worker_args()
    checkouts: list[Checkout] = []
    counters: dict[str, Counter] = {}
    try:
        for side in (options.a, options.b):
            checkout = Checkout(side.ref, options.repo or PROJECT_ROOT)
            checkouts.append(checkout)
            counters[side.name] = Counter(side, checkout, worker_args, logs)
        hello = {name: counter.hello() for name, counter in counters.items()}
        for name, side in (("A", options.a), ("B", options.b)):
            fp = hello[name]["machine_info"]["vitcnn_fingerprint"]
            print(f"vitcnn ab: side {name}: {hello[name]['python']} under callgrind (pid {hello[name]['pid']}), "
                  f"vitcnn from {f'ref {side.ref}' if side.ref else hello[name]['cwd']}, torch {fp['torch']}, "
                  f"logs in {logs}", file=sys.stderr, flush=True)
        device_type = hello["A"]["machine_info"]["vitcnn_fingerprint"]["device"]
        if device_type != "cpu":
            raise SideError("instructions are counted on the CPU only (valgrind cannot see a GPU's work): add "
                            "--device cpu")
        overrides = {"A": options.a.axis_overrides(), "B": options.b.axis_overrides()}
        records, rows = [], []
        for setting in options.settings:
            record, row = {}, {}
            for name in "AB":
                mine = replace(setting, **overrides[name])
                why_not = invalid_reason(mine, device_type)
                if why_not:
                    record[name] = Result(mine, "skipped", why_not)
                else:
                    row[name] = mine
            records.append(record)
            rows.append(row)
        for i, (record, done) in enumerate(zip(records, count_all(counters, rows, keep_dumps=options.explain)), 1):
            record.update(done)
            print(f"vitcnn ab: [{i}/{len(records)}] {options.settings[i - 1].id}: "
                  + ", ".join(f"{n} " + (f"{c.info['instructions_per_call'] / 1e6:,.2f}M instructions per call"
                                         if c.status == "ok" else c.status) for n, c in sorted(record.items()))
                  + f" ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        gate = rules.GateOptions(instructions_tolerance=options.instructions_tolerance)
        comparison = rules.compare_counted([(r["A"], r["B"]) for r in records], gate)
        up = explaining.flagged(comparison, explaining.COUNTED_LABELS) if options.explain else set()
        explanations = {r["A"].setting.id: explaining.explain_counted(r["A"], r["B"]) for r in records
                        if r["A"].setting.id in up}  # before the counters close: they own the dumps
    except SideError as exc:
        print(f"vitcnn ab: error: {exc}", file=sys.stderr)
        return 2
    finally:
        for counter in counters.values():
            counter.close()
        for checkout in checkouts:
            checkout.close()
    wall_s = time.perf_counter() - started
    comparison.notes.insert(0, f"{len(records)} settings, {wall_s:.0f} s")
    print(verdicts.format_counted_table(comparison) + explaining.render_all(explanations), end="")
    by_id = {v.id: v for v in comparison.verdicts}
    markdown = verdicts.counted_markdown(comparison) + explaining.render_all(explanations, markdown=True)
    write_outputs(options, markdown, {
        "schema": 1, "metric": "instructions", "profile": options.profile, "wall_s": wall_s,
        "options": {"instructions_tolerance": options.instructions_tolerance, "device": options.device,
                    "threads": options.threads, "explain": options.explain},
        "sides": sides_json(options, hello),
        "settings": [{"id": r["A"].setting.id, "a_id": r["A"].setting.id, "b_id": r["B"].setting.id,
                      "status": {n: r[n].status for n in "AB"},
                      "counted": {n: counted_fields(r[n]) for n in "AB"},
                      "verdict": verdict_json(by_id[r["A"].setting.id]),
                      "explanation": explanation_json(explanations, r["A"].setting.id)} for r in records]})
    print(f"vitcnn ab: {'FAILED' if comparison.has_regression else 'passed'}: {comparison.summary()}")
    return 1 if comparison.has_regression else 0
