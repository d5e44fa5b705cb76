"""Same-job interleaved A/B (`python -m vitcnn ab`): a pool of long-lived worker processes per side, driven in turns.

- worker.py   one worker process: JSON lines on stdin/stdout; setup -> block ... -> finish -> free, per setting,
              through the same measure stages (vitcnn.measure.Prepared) as `pytest --benchmark-only`;
- sides.py    what a side is (interpreter, environment, git ref, vitcnn options) and starting its worker;
- driver.py   stages (more processes per side where unsettled), rounds in a balanced order (ABBA BAAB ...), one
              process active at a time, looks, progress, outputs, exit code;
- sidefile.py each side's results as a pytest-benchmark run JSON that `vitcnn report` / `vitcnn compare` read.
The statistics live in vitcnn/gate/paired.py and the verdict rules in vitcnn/gate/rules.py (compare_paired).
"""
