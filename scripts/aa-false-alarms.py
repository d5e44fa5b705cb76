"""How often would an innocent pull request fail `vitcnn ab`? Synthetic A/A sessions drawn from measured noise.

    python scripts/aa-false-alarms.py [--sessions 400] [--alpha 0.05 0.01] [--rule t moderated] [--seed 0]
                                      [--noise 'results/DIR/plain*.json.gz'] [--machine-time]
                                      [--processes 4 --first-processes 4 --rounds 12]

Each synthetic setting resamples one measured setting of the plain A/A sessions of the 2-core VM (by default
results/regimes-2026-12-06/plain*.json.gz: 18 settings, 4 processes per side, 6 rounds): the y = round + process fit
of its blocks gives its process effects, its round effects (the machine's drift) and its block residuals (inflated
by sqrt(n / residual df) to undo the fit's shrinkage). A synthetic session of 24 settings (the smoke
profile) runs `vitcnn ab`'s design at its defaults (vitcnn.ab.design.ABOptions: first processes, the cap, rounds per
stage, looks) with fresh process effects drawn from the measured ones, drift drawn from the measured rounds and
residuals drawn from the measured blocks, and is decided by vitcnn.gate.paired exactly as the driver decides it.

Rules (--rule): `t`, the driver's (each setting's own two-sample t-test over its processes); `moderated`, a
prototype that is not in the driver yet: each setting's spread between processes shrunk toward the session's
(an empirical-Bayes prior fitted to all settings' spreads at each look, Smyth's moderated t-test), so that a
setting whose few processes happen to agree cannot look certain, and each test gets the prior's degrees of freedom.

--noise: the A/A sessions to draw from (default: the plain sessions of results/regimes-2026-12-06). --machine-time:
each measured block is first divided by its speed probe to the power of its setting's slope (vitcnn.gate.paired.
machine_time: the slope estimated inside the processes, as the driver does), so the noise drawn is what the driver's
analysis in machine time is left with; sessions without probes cannot be read this way.

Noise models (--models): `measured` as above; `regimes`: the same, plus the two speeds 20% apart that processes of
the AMD EPYC VM clustered at (issue 37: each process slow with probability 1/2). Printed per model and alpha: the
share of sessions with any false verdict (what misleads on an innocent pull request) and with a false `slower` (what
fails it), each with its 95% Clopper-Pearson interval, the share of `inconclusive` rows, the median detectable
slowdown, and with the same noise a planted 5% and 10% slowdown: the share of rows `slower`. The design
(--processes, --first-processes, --rounds) is vitcnn ab's defaults unless given.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import optimize, special, stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vitcnn.ab.design import ABOptions  # noqa: E402
from vitcnn.ab.driver import paired_blocks  # noqa: E402
from vitcnn.ab.sides import Side  # noqa: E402
from vitcnn.gate import paired  # noqa: E402
from vitcnn.settings import profile_settings  # noqa: E402

SETTINGS = len(profile_settings("smoke", "cpu"))  # the smoke profile on a CPU (24)
REGIME = math.log(1.2)


@dataclasses.dataclass(frozen=True)
class Noise:
    """One measured setting's noise: its process effects, round effects and block residuals (log seconds)."""

    effects: np.ndarray
    rounds: np.ndarray
    residuals: np.ndarray


def in_machine_time(blocks: list[paired.Block]) -> list[paired.Block]:
    """The blocks divided by their probe ** the setting's slope (paired.machine_time), or left by the clock where the
    driver would leave them; ValueError without a probe on every block."""
    if not all(b.probe for b in blocks):
        raise ValueError("a setting's blocks cannot be put in machine time: not every block has a speed probe")
    found = paired.machine_time(blocks)
    slope = found[1] if found is not None else 0.0
    return [b._replace(median=b.median / b.probe ** slope, probe=None) for b in blocks]


def measured_noise(paths: list[Path], machine: bool = False) -> list[Noise]:
    found = []
    for path in paths:
        data = json.loads(gzip.open(path).read())
        for entry in data["settings"]:
            blocks = paired_blocks([b for b in entry["blocks"] if b.get("median")])
            if len({(b.side, b.process) for b in blocks}) < 4:
                continue
            if machine:
                blocks = in_machine_time(blocks)
            units, effects, residuals, df = paired._fit(blocks)
            rounds = sorted({b.round for b in blocks})
            y = {(b.side, b.process, b.round): math.log(b.median) for b in blocks}
            effect = dict(zip(units, effects))
            round_effects = [statistics.fmean(v - effect[(s, p)] for (s, p, r), v in y.items() if r == rnd)
                             for rnd in rounds]
            inflate = math.sqrt(len(residuals) / df) if df > 0 else 1.0
            found.append(Noise(np.asarray(effects) - np.mean(effects), np.asarray(round_effects) -
                               np.mean(round_effects), np.asarray(residuals) * inflate))
    return found


def stage_blocks(rng: np.random.Generator, noise: Noise, offsets: dict[tuple[str, int], float], processes: int,
                 first_round: int, design: ABOptions, ratio: float, regimes: bool) -> list[paired.Block]:
    """One stage's blocks of one setting: `design.rounds` rounds from `first_round`, each process of each side one
    block per round; a process new to `offsets` draws its lasting effect there (and, with `regimes`, its speed)."""
    blocks = []
    for r in range(first_round, first_round + design.rounds):
        drift = rng.choice(noise.rounds)
        for k in range(processes):
            for side in "AB":
                if (side, k) not in offsets:
                    offsets[(side, k)] = rng.choice(noise.effects) + (REGIME * rng.integers(2) if regimes else 0)
                y = drift + offsets[(side, k)] + rng.choice(noise.residuals) + (math.log(ratio) if side == "B"
                                                                                   else 0.0)
                blocks.append(paired.Block(side, k, r, 0.01 * math.exp(y)))
    return blocks


def setting_estimate(rng: np.random.Generator, noise: Noise, design: ABOptions, ratio: float,
                     regimes: bool) -> paired.PairedEstimate:
    """One setting through the driver's stages: looks after each, stop when settled or at the cap."""
    offsets: dict[tuple[str, int], float] = {}
    blocks: list[paired.Block] = []
    processes = design.first
    while True:
        blocks += stage_blocks(rng, noise, offsets, processes, (processes - design.first) * design.rounds, design,
                               ratio, regimes)
        e = paired.estimate(blocks, design.looks, design.alpha, design.threshold)
        if processes == design.processes or paired.settled(e, design.alpha, design.threshold, design.detect):
            return e
        processes += 1


def _trigamma_inverse(value: float) -> float:
    return float(optimize.brentq(lambda x: special.polygamma(1, x) - value, 1e-8, 1e8))


def spread_prior(variances: np.ndarray, dfs: np.ndarray) -> tuple[float, float]:
    """(d0, s0^2): the scaled inverse-chi-square prior of the settings' variances, fitted by moments of their logs
    (Smyth 2004); d0 = inf when the variances scatter no more than sampling alone makes them."""
    keep = (variances > 0) & (dfs > 0)
    v, d = variances[keep], dfs[keep]
    e = np.log(v) - special.digamma(d / 2) + np.log(d / 2)
    excess = float(np.var(e, ddof=1) - np.mean(special.polygamma(1, d / 2))) if len(e) > 1 else 0.0
    if excess <= 0:
        return math.inf, float(math.exp(np.mean(e)))
    d0 = 2 * _trigamma_inverse(excess)
    return d0, float(math.exp(np.mean(e) + special.digamma(d0 / 2) - math.log(d0 / 2)))


def sides_spread(effects: dict[tuple[str, int], float]) -> tuple[np.ndarray, np.ndarray, float, int]:
    """A's and B's process effects, their pooled within-side variance and its degrees of freedom."""
    a = np.array([v for (side, _), v in effects.items() if side == "A"])
    b = np.array([v for (side, _), v in effects.items() if side == "B"])
    d = len(a) + len(b) - 2
    return a, b, float((((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()) / d), d


def moderated(spread: tuple[np.ndarray, np.ndarray, float, int], prior: tuple[float, float], design: ABOptions,
              blocks: int) -> paired.PairedEstimate:
    """One setting's estimate with its spread (sides_spread) shrunk toward the prior (posterior variance, d0 + d
    degrees of freedom); p-values and interval spent over the design's looks as paired.estimate does."""
    a, b, own, d = spread
    d0, s0 = prior
    variance = s0 if math.isinf(d0) else (d0 * s0 + d * own) / (d0 + d)
    df = 1e6 if math.isinf(d0) else d0 + d
    se = math.sqrt(variance * (1 / len(a) + 1 / len(b)))
    centre = float(b.mean() - a.mean())
    spent = design.alpha / design.looks
    p_slower = float(stats.t.sf(centre / se, df)) * design.looks
    p_faster = float(stats.t.cdf(centre / se, df)) * design.looks
    half = float(stats.t.ppf(1 - spent, df)) * se  # each end is the one-sided test, as in paired.estimate
    return paired.PairedEstimate(len(a), blocks, centre, centre - half, centre + half, min(1.0, p_slower),
                                 min(1.0, p_faster), paired._detectable(se, int(min(df, 1e6)), spent,
                                                                        design.threshold), design.looks)


def session_moderated(rng, noises, design, ratio, regimes) -> list[paired.PairedVerdict]:
    """A session under the moderated rule: every look fits the prior to all settings' current spreads."""
    picks = [noises[i] for i in rng.integers(len(noises), size=SETTINGS)]
    offsets: list[dict] = [{} for _ in picks]
    blocks: list[list[paired.Block]] = [[] for _ in picks]
    active, final = set(range(len(picks))), {}
    processes = design.first
    while True:
        for i in active:
            blocks[i] += stage_blocks(rng, picks[i], offsets[i], processes, (processes - design.first) * design.rounds,
                                      design, ratio, regimes)
        spreads = [sides_spread(paired.process_effects(bl)) for bl in blocks]
        prior = spread_prior(np.array([v for _, _, v, _ in spreads]),
                             np.array([d for _, _, _, d in spreads], dtype=float))
        for i in list(active):
            e = moderated(spreads[i], prior, design, len(blocks[i]) // (2 * processes))
            final[i] = e
            if processes == design.processes or paired.settled(e, design.alpha, design.threshold, design.detect):
                active.discard(i)
        if not active:
            break
        processes += 1
    return paired.decide([final[i] for i in range(len(picks))], design.alpha, design.threshold, design.detect)


def session(rng, noises, design, ratio, regimes) -> list[paired.PairedVerdict]:
    picks = rng.integers(len(noises), size=SETTINGS)
    return paired.decide([setting_estimate(rng, noises[i], design, ratio, regimes) for i in picks],
                         design.alpha, design.threshold, design.detect)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--planted-sessions", type=int, default=40)
    defaults = ABOptions(Side("A"), Side("B"), [], "smoke")
    parser.add_argument("--alpha", type=float, nargs="+", default=[defaults.alpha])
    parser.add_argument("--models", nargs="+", default=["measured", "regimes"])
    parser.add_argument("--rule", nargs="+", default=["t"], choices=["t", "moderated"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=defaults.processes, help="the design (default: vitcnn ab's)")
    parser.add_argument("--first-processes", type=int, default=defaults.first)
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--noise", default="results/regimes-2026-12-06/plain*.json.gz",
                        help="the A/A sessions (vitcnn ab --json, gzipped) to draw noise from, a glob under the root")
    parser.add_argument("--machine-time", action="store_true", help="the noise left in machine time")
    args = parser.parse_args()
    paths = sorted(ROOT.glob(args.noise))
    if not paths:
        parser.error(f"no file matches {args.noise}")
    noises = measured_noise(paths, args.machine_time)
    print(f"{len(noises)} measured settings from {len(paths)} session(s)"
          f"{' in machine time' if args.machine_time else ''}; {SETTINGS} settings per session")
    print(f"design: {args.processes} processes per side, {args.first_processes} in stage 1, {args.rounds} rounds "
          "per stage")
    print("rule       noise     alpha   sessions  any false verdict (95% CI)   false `slower` (95% CI)   inconclusive  "
          "median detectable  planted 5% slower  planted 10% slower")
    for rule, model, alpha in [(r, m, a) for r in args.rule for m in args.models for a in args.alpha]:
        run = session if rule == "t" else session_moderated
        design = dataclasses.replace(defaults, alpha=alpha, processes=args.processes, first=args.first_processes,
                                     rounds=args.rounds)
        rng = np.random.default_rng(args.seed)
        false, false_slower, inconclusive, detectable = 0, 0, 0, []
        for _ in range(args.sessions):
            verdicts = run(rng, noises, design, 1.0, model == "regimes")
            false += any(v.label in ("slower", "faster") for v in verdicts)
            false_slower += any(v.label == "slower" for v in verdicts)  # what fails an innocent pull request
            inconclusive += sum(v.label == "inconclusive" for v in verdicts)
            detectable += [v.estimate.detectable for v in verdicts]
        caught = {}
        for ratio in (1.05, 1.10):
            rows = [v for _ in range(args.planted_sessions)
                    for v in run(rng, noises, design, ratio, model == "regimes")]
            caught[ratio] = sum(v.label == "slower" for v in rows) / len(rows)
        ci = stats.binomtest(false, args.sessions).proportion_ci(0.95)
        ci_slower = stats.binomtest(false_slower, args.sessions).proportion_ci(0.95)
        print(f"{rule:10} {model:9} {alpha:<7g} {args.sessions:<9} {false / args.sessions:6.1%} "
              f"({ci.low:.1%}-{ci.high:.1%})          {false_slower / args.sessions:6.1%} "
              f"({ci_slower.low:.1%}-{ci_slower.high:.1%})       "
              f"{inconclusive / (args.sessions * SETTINGS):6.1%}       "
              f"{statistics.median(detectable):6.1%}             {caught[1.05]:6.1%}             "
              f"{caught[1.10]:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
