"""How often would an innocent pull request fail `vitcnn ab`? Synthetic A/A sessions drawn from measured noise.

    python scripts/aa-false-alarms.py [--sessions 400] [--alpha 0.05 0.01] [--seed 0]

Each synthetic setting resamples one measured setting of the plain A/A sessions of the 2-core VM
(results/regimes-2026-12-06/plain*.json.gz: 18 settings, 4 processes per side, 6 rounds): the y = round + process
fit of its blocks gives its process effects, its round effects (the machine's drift) and its block residuals
(inflated by sqrt(n / residual df) to undo the fit's shrinkage). A synthetic session of 32 settings (the smoke
profile) runs `vitcnn ab`'s design at its defaults (vitcnn.ab.design.ABOptions: first processes, the cap, rounds per
stage, looks) with fresh process effects drawn from the measured ones, drift drawn from the measured rounds and
residuals drawn from the measured blocks, and is decided by vitcnn.gate.paired exactly as the driver decides it.

Noise models (--models): `measured` as above; `regimes`: the same, plus the two speeds 20% apart that processes of
the AMD EPYC VM clustered at (issue 37: each process slow with probability 1/2). Printed per model and alpha: the
share of sessions with any false verdict (what fails or misleads an innocent pull request), with its 95% Clopper-
Pearson interval, the share of `inconclusive` rows, the median detectable slowdown, and with the same noise a
planted 5% and 10% slowdown: the share of rows `slower`.
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
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vitcnn.ab.design import ABOptions  # noqa: E402
from vitcnn.ab.sides import Side  # noqa: E402
from vitcnn.gate import paired  # noqa: E402

SETTINGS = 32  # the smoke profile
REGIME = math.log(1.2)


@dataclasses.dataclass(frozen=True)
class Noise:
    """One measured setting's noise: its process effects, round effects and block residuals (log seconds)."""

    effects: np.ndarray
    rounds: np.ndarray
    residuals: np.ndarray


def measured_noise(paths: list[Path]) -> list[Noise]:
    found = []
    for path in paths:
        data = json.loads(gzip.open(path).read())
        for entry in data["settings"]:
            blocks = [paired.Block(b["side"], b["process"], b["round"], b["median"]) for b in entry["blocks"]
                      if b.get("median")]
            if len({(b.side, b.process) for b in blocks}) < 4:
                continue
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


def setting_estimate(rng: np.random.Generator, noise: Noise, design: ABOptions, ratio: float,
                     regimes: bool) -> paired.PairedEstimate:
    """One setting through the driver's stages: looks after each, stop when settled or at the cap."""
    offsets: dict[tuple[str, int], float] = {}
    blocks: list[paired.Block] = []
    processes, first_round = design.first, 0
    while True:
        for r in range(first_round, first_round + design.rounds):
            drift = rng.choice(noise.rounds)
            for k in range(processes):
                for side in "AB":
                    if (side, k) not in offsets:
                        offsets[(side, k)] = rng.choice(noise.effects) + (REGIME * rng.integers(2) if regimes else 0)
                    y = drift + offsets[(side, k)] + rng.choice(noise.residuals) + (math.log(ratio) if side == "B"
                                                                                       else 0.0)
                    blocks.append(paired.Block(side, k, r, 0.01 * math.exp(y)))
        first_round += design.rounds
        e = paired.estimate(blocks, design.looks, design.alpha, design.threshold)
        if processes == design.processes or paired.settled(e, design.alpha, design.threshold, design.detect):
            return e
        processes += 1


def session(rng, noises, design, ratio, regimes) -> list[paired.PairedVerdict]:
    picks = rng.integers(len(noises), size=SETTINGS)
    return paired.decide([setting_estimate(rng, noises[i], design, ratio, regimes) for i in picks],
                         design.alpha, design.threshold, design.detect)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--planted-sessions", type=int, default=40)
    parser.add_argument("--alpha", type=float, nargs="+", default=[ABOptions(Side("A"), Side("B"), [], "smoke").alpha])
    parser.add_argument("--models", nargs="+", default=["measured", "regimes"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    noises = measured_noise(sorted((ROOT / "results" / "regimes-2026-12-06").glob("plain*.json.gz")))
    print(f"{len(noises)} measured settings; {SETTINGS} settings per session")
    print("noise     alpha   sessions  any false verdict (95% CI)   inconclusive  median detectable  "
          "planted 5% slower  planted 10% slower")
    for model in args.models:
        for alpha in args.alpha:
            design = dataclasses.replace(ABOptions(Side("A"), Side("B"), [], "smoke"), alpha=alpha)
            rng = np.random.default_rng(args.seed)
            false, inconclusive, detectable = 0, 0, []
            for _ in range(args.sessions):
                verdicts = session(rng, noises, design, 1.0, model == "regimes")
                false += any(v.label in ("slower", "faster") for v in verdicts)
                inconclusive += sum(v.label == "inconclusive" for v in verdicts)
                detectable += [v.estimate.detectable for v in verdicts]
            caught = {}
            for ratio in (1.05, 1.10):
                rows = [v for _ in range(args.planted_sessions)
                        for v in session(rng, noises, design, ratio, model == "regimes")]
                caught[ratio] = sum(v.label == "slower" for v in rows) / len(rows)
            ci = stats.binomtest(false, args.sessions).proportion_ci(0.95)
            print(f"{model:9} {alpha:<7g} {args.sessions:<9} {false / args.sessions:6.1%} "
                  f"({ci.low:.1%}-{ci.high:.1%})          {inconclusive / (args.sessions * SETTINGS):6.1%}       "
                  f"{statistics.median(detectable):6.1%}             {caught[1.05]:6.1%}             "
                  f"{caught[1.10]:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
