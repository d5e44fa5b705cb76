#!/usr/bin/env python
"""Compare the history's change-point detector (ruptures PELT, vitcnn/history/changepoints.py) with Apache Otava's
E-divisive means (the Hunter algorithm: split by the energy statistic in sliding windows, then merge weak points
by a t-test), on the same series:

- flat noisy series over many seeds (Gaussian, Student t with 3 dof, and Gaussian with one wild commit): the
  false-alarm rate (any change point) and the false-regression rate (the latest change +10% or more: what would
  fail `vitcnn history check` for latency);
- planted steps of 5%, 10% and 20% in the middle of the series and with only two commits after the step (the
  newest regression, once confirmed): detection rate (a change within one commit of the step), exact location,
  and extra changes besides it;
- the time per series;
- the real series of a history store (argument): what each finds, and the noise of one commit on that machine.

`--sweep` also varies ruptures' settings (penalty beta, minimum segment, l1 vs l2 cost) over the same series.

Otava is not a dependency of vitcnn (its package pins numpy 2.2.0 and scipy < 1.17 and pulls BigQuery, Postgres,
Slack and Graphite clients): install it beside, without dependencies, and point --otava at it:
    pip install --no-deps --target /tmp/otava apache-otava
Its analysis module needs only numpy and scipy, which vitcnn's environment has.

Usage: python scripts/evaluate-changepoints.py [STORE] [--seeds 300] [--otava /tmp/otava] [--sweep]
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ruptures

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitcnn.history import changepoints
from vitcnn.history import check as check_module

LENGTH = 30
SIGMA = 0.02  # noise of one commit's median, log units
TOLERANCE = 0.10  # latency's: a change this large is a regression
Detector = Callable[[list[float]], list[int]]


# ------------------------------------------------------------------------------------------------ the detectors


def ruptures_detector(beta: float = changepoints.PENALTY_BETA, min_size: int = changepoints.MIN_SEGMENT,
                      model: str = "l1") -> Detector:
    """changepoints.breakpoints with its constants as arguments (the default is checked equal to it)."""

    def detect(values: list[float]) -> list[int]:
        if len(values) < 2 * min_size or any(v <= 0 for v in values):
            return []
        logs = np.log(np.asarray(values, dtype=float))
        penalty = beta * changepoints.noise_sigma(logs) * math.log(len(logs))
        if model == "l2":  # l2's cost is a sum of squares: its penalty scales with the variance (2: BIC)
            penalty = beta * changepoints.noise_sigma(logs) ** 2 * math.log(len(logs))
        ends = ruptures.Pelt(model=model, min_size=min_size, jump=1).fit(logs.reshape(-1, 1)).predict(pen=penalty)
        return [end for end in ends if end < len(values)]

    return detect


def otava_detector(path: str, max_pvalue: float = 0.001, window: int = 50) -> Detector | None:
    """Otava's compute_change_points with its command line's defaults (p 0.001, window 50, magnitude 0), on the
    raw values as Otava reads them; None when Otava is not installed at `path`."""
    sys.path.insert(0, path)
    try:
        from otava.analysis import compute_change_points
    except ImportError:
        return None
    finally:
        sys.path.remove(path)

    def detect(values: list[float]) -> list[int]:
        found, _weak = compute_change_points(list(values), window_len=window, max_pvalue=max_pvalue)
        return sorted(int(cp.index) for cp in found)

    return detect


# ------------------------------------------------------------------------------------------------- the series


def noise(rng: np.random.Generator, kind: str, n: int, sigma: float) -> np.ndarray:
    """Log noise with median |x| equal to a normal's of `sigma` (so 'gauss' and 't3' are equally noisy in the
    bulk; t3's tails are far heavier)."""
    if kind == "t3":
        return rng.standard_t(3, n) * sigma * 0.6745 / 0.7649
    logs = rng.normal(0.0, sigma, n)
    if kind == "gauss+wild":  # one commit measured 40% slow: a neighbour's burst on a shared VM
        logs[rng.integers(n)] += math.log(1.4)
    return logs


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    step: float = 1.0
    at: int | None = None  # first commit after the step

    def series(self, seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        logs = noise(rng, self.kind, LENGTH, SIGMA)
        if self.at is not None:
            logs[self.at:] += math.log(self.step)
        return list(0.01 * np.exp(logs))


FLAT = [Scenario("flat, Gaussian", "gauss"), Scenario("flat, Student t3", "t3"),
        Scenario("flat, Gaussian + one wild commit", "gauss+wild")]
STEPS = [Scenario(f"+{round((step - 1) * 100)}% at {where}", "gauss", step, at)
         for step in (1.05, 1.10, 1.20) for where, at in (("commit 15", 15), ("newest 2", LENGTH - 2))]


def levels(values: list[float], cuts: list[int]) -> list[float]:
    bounds = [0, *cuts, len(values)]
    return [statistics.median(values[a:b]) for a, b in itertools.pairwise(bounds)]


def check_fails(values: list[float], cuts: list[int], tolerance: float = TOLERANCE) -> bool:
    """What fails `vitcnn history check` (check.py's rule, on any detector's cuts): the newest level is more than
    the tolerance above the level before the newest regression (a rise beyond the tolerance)."""
    lv = levels(values, cuts)
    rises = [i for i in range(len(cuts)) if lv[i + 1] > lv[i] * (1 + tolerance)]
    return bool(rises) and lv[-1] > lv[rises[-1]] * (1 + tolerance)


@dataclass
class Tally:
    runs: int = 0
    any_change: int = 0
    regression: int = 0
    detected: int = 0
    exact: int = 0
    extra: int = 0
    seconds: float = 0.0

    def rate(self, count: int) -> str:
        return f"{count / self.runs:.1%}" if self.runs else "-"


def evaluate(detect: Detector, scenario: Scenario, seeds: int) -> Tally:
    tally = Tally()
    for seed in range(seeds):
        values = scenario.series(seed)
        start = time.perf_counter()
        cuts = detect(values)
        tally.seconds += time.perf_counter() - start
        tally.runs += 1
        tally.any_change += bool(cuts)
        tally.regression += check_fails(values, cuts)
        if scenario.at is not None:
            near = [c for c in cuts if abs(c - scenario.at) <= 1]
            tally.detected += bool(near)
            tally.exact += scenario.at in cuts
            tally.extra += bool(set(cuts) - set(near[:1]))
    return tally


def wilson(count: int, n: int, z: float = 1.96) -> str:
    """95% Wilson interval of a rate: how sure the rates of the table are with this many seeds."""
    if not n:
        return "-"
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"[{max(0.0, centre - half):.1%}, {min(1.0, centre + half):.1%}]"


def synthetic_tables(detectors: dict[str, Detector], seeds: int) -> None:
    print(f"## Flat series ({seeds} seeds, {LENGTH} commits, noise {SIGMA:.0%} per commit)\n")
    print("| detector | series | false alarms (any change) | 95% interval | false regression (check fails) "
          "| ms per series |")
    print("|---|---|---|---|---|---|")
    for name, detect in detectors.items():
        for scenario in FLAT:
            t = evaluate(detect, scenario, seeds)
            print(f"| {name} | {scenario.name} | {t.rate(t.any_change)} | {wilson(t.any_change, t.runs)} "
                  f"| {t.rate(t.regression)} | {1e3 * t.seconds / t.runs:.1f} |")
    print(f"\n## Planted steps ({seeds} seeds, Gaussian noise {SIGMA:.0%})\n")
    print("| detector | step | detected (+-1 commit) | exact commit | extra changes | check fails | "
          "ms per series |")
    print("|---|---|---|---|---|---|---|")
    for name, detect in detectors.items():
        for scenario in STEPS:
            t = evaluate(detect, scenario, seeds)
            print(f"| {name} | {scenario.name} | {t.rate(t.detected)} | {t.rate(t.exact)} | {t.rate(t.extra)} "
                  f"| {t.rate(t.regression)} | {1e3 * t.seconds / t.runs:.1f} |")
    print()


def delay(detectors: dict[str, Detector], seeds: int, step: float = 1.15) -> None:
    """How many commits after a +15% step each detector needs: `check` can only confirm what it has found (a step
    of exactly the tolerance would fail the check half the time whatever the detector)."""
    after = (2, 3, 4, 5, 8)
    print(f"## Detection of a +{round((step - 1) * 100)}% step by commits measured after it ({seeds} seeds, "
          f"{LENGTH} commits, noise {SIGMA:.0%})\n")
    print("| detector | " + " | ".join(f"{k} after" for k in after) + " |")
    print("|---|" + "---|" * len(after))
    for name, detect in detectors.items():
        cells = []
        for k in after:
            t = evaluate(detect, Scenario("", "gauss", step, LENGTH - k), seeds)
            cells.append(f"{t.rate(t.detected)} / {t.rate(t.regression)}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n(detected within one commit / check fails: the newest level more than 10% above the old one)\n")


def sweep(seeds: int) -> None:
    scenarios = [*FLAT[:2], STEPS[0], STEPS[2], STEPS[3]]
    print(f"## ruptures' settings ({seeds} seeds; the shipped ones are l1, beta {changepoints.PENALTY_BETA}, "
          f"min segment {changepoints.MIN_SEGMENT})\n")
    print("| cost | beta | min segment | " + " | ".join(s.name for s in scenarios) + " |")
    print("|---|---|---|" + "---|" * len(scenarios))
    for model in ("l1", "l2"):
        for beta in (1.5, 2.0, 2.5, 3.0, 4.0):
            for min_size in (2, 3):
                detect = ruptures_detector(beta, min_size, model)
                cells = []
                for scenario in scenarios:
                    t = evaluate(detect, scenario, seeds)
                    cells.append(t.rate(t.any_change if scenario.at is None else t.detected))
                print(f"| {model} | {beta} | {min_size} | " + " | ".join(cells) + " |")
    print("\n(flat columns: false alarms; step columns: detected within one commit)\n")


# -------------------------------------------------------------------------------------------- the real series


def real_series(store_path: Path, detectors: dict[str, Detector]) -> None:
    from vitcnn.history import series as series_module
    from vitcnn.history.store import HistoryStore

    store = HistoryStore(store_path)
    built = series_module.build((e.key, run) for e, run in store.runs())
    commits = {p.commit for s in built for p in s.points}
    print(f"## Real series: {store_path} ({len(store.entries)} runs, {len(commits)} commits, {len(built)} series)\n")
    machines: dict[str, set[str]] = {}
    for s in built:
        machines.setdefault(s.machine, set()).update(p.commit for p in s.points)
    print("Machines: " + "; ".join(f"{m} ({len(c)} commits)" for m, c in sorted(machines.items())) + "\n")
    sigmas = [changepoints.noise_sigma(np.log(s.values)) for s in built
              if s.metric.name == "latency" and len(s.values) >= 3]
    if sigmas:
        q = np.quantile(sigmas, [0.1, 0.5, 0.9])
        print(f"Noise of one commit's latency (robust sigma per series, log units): 10% {q[0]:.3f}, "
              f"median {q[1]:.3f}, 90% {q[2]:.3f}\n")
    print("| detector | series with a change | change points | beside a one-commit segment | series ending in a "
          "regression | seconds |")
    print("|---|---|---|---|---|---|")
    found: dict[str, dict[tuple, list[int]]] = {}
    for name, detect in detectors.items():
        start = time.perf_counter()
        found[name] = {(s.machine, s.setting_id, s.metric.name): detect(s.values) for s in built}
        seconds = time.perf_counter() - start
        failing = sum(check_fails(s.values, found[name][(s.machine, s.setting_id, s.metric.name)],
                                  s.metric.tolerance) for s in built)
        lonely = sum(_beside_single(cuts, len(s.values)) for s in built
                     for cuts in [found[name][(s.machine, s.setting_id, s.metric.name)]])
        print(f"| {name} | {sum(bool(c) for c in found[name].values())} | "
              f"{sum(len(c) for c in found[name].values())} | {lonely} | {failing} | {seconds:.2f} |")
    names = list(detectors)
    for other in names[1:]:
        agree = only_first = only_other = 0
        for key, cuts in found[names[0]].items():
            theirs = found[other][key]
            matched = {c for c in cuts if any(abs(c - t) <= 1 for t in theirs)}
            agree += len(matched)
            only_first += len(cuts) - len(matched)
            only_other += sum(not any(abs(t - c) <= 1 for c in cuts) for t in theirs)
        print(f"\n{names[0]} vs {other}: {agree} change points both (within one commit), {only_first} only "
              f"{names[0]}, {only_other} only {other}")
    print("\nEvery change point found (commit = first commit after the change):\n")
    print("| series | metric | commits | " + " | ".join(detectors) + " |")
    print("|---|---|---|" + "---|" * len(detectors))
    for s in built:
        key = (s.machine, s.setting_id, s.metric.name)
        cuts = sorted({c for name in detectors for c in found[name][key]})
        if not cuts:
            continue
        cells = []
        for name in detectors:
            mine = found[name][key]
            cells.append(", ".join(f"{s.points[c].commit[:8]} {_ratio(s.values, mine, c):+.1%}" for c in mine)
                         or "-")
        print(f"| {s.setting_id} | {s.metric.name} | {len(s.values)} | " + " | ".join(cells) + " |")
    print()


def _beside_single(cuts: list[int], n: int) -> int:
    """Change points with a segment of one commit on either side: one odd measurement read as a change."""
    bounds = [0, *cuts, n]
    return sum(bounds[i + 1] - bounds[i] == 1 or bounds[i + 2] - bounds[i + 1] == 1 for i in range(len(cuts)))


def _ratio(values: list[float], cuts: list[int], cut: int) -> float:
    i = cuts.index(cut)
    lv = levels(values, cuts)
    return lv[i + 1] / lv[i] - 1


def _series(values: list[float]):
    from vitcnn.history.series import METRICS, Point, Series

    points = [Point(f"c{i}", f"2026-01-01T00:{i:02d}:00+00:00", v) for i, v in enumerate(values)]
    return Series("m", "s", METRICS["latency"], points)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", nargs="?", type=Path, help="a history store whose real series to analyse")
    parser.add_argument("--seeds", type=int, default=300, help="series per synthetic scenario (default %(default)s)")
    parser.add_argument("--otava", default="/tmp/otava", help="where apache-otava is installed (--target)")
    parser.add_argument("--sweep", action="store_true", help="also vary ruptures' settings")
    parser.add_argument("--no-synthetic", action="store_true", help="only the real series")
    parser.add_argument("--sigma", type=float, default=SIGMA,
                        help="noise of one commit in the synthetic series, log units (default %(default)s; the real "
                             "store's median is printed with its series)")
    args = parser.parse_args()
    globals()["SIGMA"] = args.sigma  # the scenarios read it when they draw

    shipped = ruptures_detector()
    check = [Scenario("check", "t3", 1.1, 20).series(seed) for seed in range(20)]
    assert all(shipped(v) == changepoints.breakpoints(v) for v in check), "the replica differs from the module"
    assert all(check_fails(v, shipped(v)) == any(f.fails for f in check_module.findings([_series(v)]))
               for v in check), "check_fails differs from vitcnn history check"
    detectors: dict[str, Detector] = {"ruptures (shipped)": changepoints.breakpoints}
    otava = otava_detector(args.otava)
    if otava is None:
        print(f"Otava not importable from {args.otava}: only ruptures is evaluated\n")
    else:
        detectors["otava (p 0.001)"] = otava
        detectors["otava (p 0.01)"] = otava_detector(args.otava, max_pvalue=0.01)
    if not args.no_synthetic:
        synthetic_tables(detectors, args.seeds)
        delay(detectors, args.seeds)
    if args.sweep:
        sweep(args.seeds)
    if args.store:
        real_series(args.store, detectors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
