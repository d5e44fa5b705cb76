"""Measuring processes: a worker (one long-lived process that measures one setting at a time, a block at a time),
how it is started and spoken to, the checkout it runs from, and counting instructions with a pair of them.

- worker.py    the worker program: JSON lines on stdin/stdout; setup -> block ... -> finish -> free, per setting,
               through the same measure stages (vitcnn.measure.Prepared) as `pytest --benchmark-only`;
- process.py   starting a worker (interpreter, environment, options; optionally under callgrind) and its protocol;
- checkout.py  the directory a worker runs from: this project or a temporary git worktree of a ref;
- counting.py  instructions per call: a plain worker that compiles and checks, a worker under callgrind that counts.
`vitcnn ab` (interleaved A/B), the pytest plugin (instruction counts at session end) and `vitcnn history run`
(worktrees) use it; it imports none of them.
"""


class SideError(ValueError):
    """A side (of an A/B, or the plugin's counting) asked for wrongly, or whose worker cannot start or stops
    answering."""
