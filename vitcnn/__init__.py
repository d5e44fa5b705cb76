"""vitcnn: a performance regression suite for compiled vision backbones.

The package reads like its data flow: zoo (models) -> measure (one setting) -> runfile (the run JSON) -> gate /
report, with ab (interleaved A/B) and scale (shards, merge, sweep) around them; settings, options, plugin and cli
are the session-level pieces.
"""

from vitcnn import _moved

__version__ = "0.1.0"

_moved.install()
