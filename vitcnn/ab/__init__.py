"""Same-job interleaved A/B (`python -m vitcnn ab`): two long-lived worker processes, one per side, driven in turns.

- worker.py   the process of one side: JSON lines on stdin/stdout; setup -> block ... -> finish -> free, per setting,
              through the same measure stages (vitcnn.measure.Prepared) as `pytest --benchmark-only`;
- sides.py    what a side is (interpreter, environment, git ref, vitcnn options) and starting its worker;
- driver.py   the balanced schedule (ABBA BAAB ...), one side active at a time, progress, outputs, exit code;
- sidefile.py each side's results as a pytest-benchmark run JSON that `vitcnn report` / `vitcnn compare` read.
The statistics live in vitcnn/gate/paired.py and the verdict rules in vitcnn/gate/rules.py (compare_paired).
"""
