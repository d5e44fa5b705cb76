"""Same-job interleaved A/B (`python -m vitcnn ab`): a pool of worker processes per side, driven in turns.

- sides.py    what a side is (interpreter, environment, git ref, vitcnn options);
- design.py   the session: sides, settings, processes, rounds, the balanced order (ABBA BAAB ...), statistics;
- driver.py   stages (more processes per side where unsettled), rounds, one process active at a time, looks,
              progress, exit code;
- counted.py  `--metric instructions`: both sides counted under callgrind, no timing;
- outputs.py  the Markdown and JSON outputs; sidefile.py each side's results as a pytest-benchmark run JSON that
              `vitcnn report` / `vitcnn compare` read.
The worker processes are vitcnn/workers; the statistics live in vitcnn/gate/paired.py and the verdict rules in
vitcnn/gate/rules.py (compare_paired, compare_counted).
"""
