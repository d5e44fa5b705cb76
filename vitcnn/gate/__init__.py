"""Decide whether a run regressed: stored baselines, the verdict rules, paired A/B statistics, verdict tables.

Reads Run records (vitcnn.runfile); never measures. `rules.py` holds the verdicts (a stored baseline compared with
Mann-Whitney and a learnt run-to-run spread; interleaved A/B decided by `paired.py`), `baseline.py` the files,
`verdicts.py` the tables.
"""
