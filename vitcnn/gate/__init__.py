"""Decide whether a run regressed: the gated metrics, their rules, stored baselines, A/B statistics, verdict tables.

Reads Result records (vitcnn.result, vitcnn.runfile); never measures. `metrics.py` is the table of what is gated
(labels, tolerances, options, rules); `rules.py` the compare core and the comparisons built on it; `speed.py` the
speed rules (one run's samples, saved runs as units, an A/B's processes, instruction counts); `memory.py`,
`instructions.py`, `compiled.py` the other rules; `paired.py` the A/B statistics; `comparison.py` the verdict
records; `baseline.py` the files; `verdicts.py` the tables.
"""
