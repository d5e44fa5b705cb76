"""vitcnn: a performance regression suite for compiled vision backbones.

The package reads like its data flow: zoo (models) -> measure (one setting) -> runfile (the run JSON) -> gate /
report, with ab (interleaved A/B), workers (measuring processes) and scale (shards, merge, sweep) around them;
settings, options, plugin, session and cli are the session-level pieces.
"""

__version__ = "0.1.0"
