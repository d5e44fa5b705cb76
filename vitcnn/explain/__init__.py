"""Why a setting got slower: what a `slower` (or `instructions-up`) row adds after the verdict, in a separate pass
so the timing stays clean.

- ops.py        a prepared setting's calls under torch.profiler: self time, calls and FLOPs per op, and a trace
                (runs in a worker: vitcnn/workers/worker.py's "profile" request);
- functions.py  a callgrind dump's instructions per function, read by callgrind's own `callgrind_annotate`;
- diff.py       A against B: the ops (or functions) that changed most, the compile facts that changed, the command
                that reproduces the setting under Nsight Systems; rendered as text, Markdown and JSON.
`vitcnn ab` (vitcnn/ab/explaining.py) and `vitcnn bisect` use it.
"""

DEFAULT_CALLS = 5  # calls profiled per side: a stable per-call mean of every op, a few seconds at most
