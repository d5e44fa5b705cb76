"""Old import paths of modules that moved into the stage packages, kept working with a DeprecationWarning.

Before the package was laid out by stage, every module sat in `vitcnn/`. User code such as
`from vitcnn.window import WindowAttention` or `from vitcnn.flops import count_flops` still gets the same module
object from its new home.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {  # old module -> new module (vitcnn.gate and vitcnn.measure became the packages of the same name)
    "vitcnn.window": "vitcnn.zoo.window", "vitcnn.vitdet": "vitcnn.zoo.vitdet", "vitcnn.models": "vitcnn.zoo.models",
    "vitcnn.timing": "vitcnn.measure.timing", "vitcnn.flops": "vitcnn.measure.flops",
    "vitcnn.sdpa": "vitcnn.measure.sdpa", "vitcnn.compiling": "vitcnn.measure.compiling",
    "vitcnn.reference": "vitcnn.measure.reference", "vitcnn.failures": "vitcnn.measure.failures",
    "vitcnn.training": "vitcnn.measure.training", "vitcnn.memory": "vitcnn.measure.memory",
    "vitcnn.peaks": "vitcnn.measure.peaks", "vitcnn.precision": "vitcnn.measure.precision",
    "vitcnn.baseline": "vitcnn.gate.baseline", "vitcnn.paired": "vitcnn.gate.paired",
    "vitcnn.verdicts": "vitcnn.gate.verdicts",
    "vitcnn.shard": "vitcnn.scale.shard", "vitcnn.merge": "vitcnn.scale.merge", "vitcnn.sweep": "vitcnn.scale.sweep",
    "vitcnn.compile_cache": "vitcnn.scale.compile_cache",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and hands back the module that now lives under the new one."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module is already executed under its new name."""


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
