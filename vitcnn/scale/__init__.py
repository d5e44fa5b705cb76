"""Run a selection on many GPUs or machines: shards, merging their runs, a one-node sweep, a portable compile cache.

`shard.py` splits the selection (an option, a Slurm array or a Kubernetes indexed Job), `merge.py` joins the shard
runs into one, refusing parts that do not fit together, `sweep.py` runs one pytest per GPU and merges, and
`compile_cache.py` carries inductor's artifacts between machines of one fingerprint.
"""
