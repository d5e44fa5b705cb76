"""Instructions per function of a callgrind dump, read by callgrind's own `callgrind_annotate` (shipped with
valgrind): the function-level half of an `instructions-up` explanation, from the very dump that was counted.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_ROW = re.compile(r"^\s*([\d,]+)\s+(.+?)\s*$")
_OBJECT = re.compile(r"^(?P<where>.*?)\s+\[(?P<object>[^\]]+)\]$")


class AnnotateError(RuntimeError):
    """callgrind_annotate is missing, failed, or printed something that is not a function table."""


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]+$")
_RECURSION = re.compile(r"'\d+$")
UNNAMED = "code without a symbol (JIT-generated kernels, e.g. oneDNN's)"


def function_key(location: str) -> str:
    """`file:function [object]` as callgrind_annotate prints it -> `function (object file name)`: the source path
    and the object's directory differ between checkouts, caches and machines; the function and library do not.
    Code without a symbol (an address: a JIT's kernels, at other addresses in every process) is one key, and a
    recursion level (callgrind's `name'2`) counts for its function."""
    match = _OBJECT.match(location)
    where, obj = (match["where"], Path(match["object"]).name) if match else (location, None)
    function = where.split(":", 1)[1] if ":" in where else where  # "???:name" too: the file is unknown
    function = _RECURSION.sub("", function)
    if _ADDRESS.match(function):
        return UNNAMED + (f" ({obj})" if obj and obj != "???" else "")
    return f"{function} ({obj})" if obj else function


def parse(annotated: str) -> dict[str, int]:
    """The exclusive instruction count of every function in callgrind_annotate's table (summed when two locations
    give one key)."""
    lines = annotated.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("file:function"))
    except StopIteration:
        raise AnnotateError("callgrind_annotate printed no `file:function` table") from None
    costs: dict[str, int] = {}
    for line in lines[start + 2:]:  # the header, then a line of dashes
        match = _ROW.match(line)
        if not line.strip() or set(line.strip()) == {"-"}:
            if costs:
                break
            continue
        if match:
            key = function_key(match[2])
            costs[key] = costs.get(key, 0) + int(match[1].replace(",", ""))
    return costs


def function_costs(dump: Path, kept: int | None = None) -> dict[str, int]:
    """The functions of `dump` (the `kept` with the most instructions; None: all), largest first, with their own
    instructions (exclusive: not their callees'). A diff takes all of both sides: a function cut from one side's
    top list would read as gone."""
    try:
        done = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", str(dump)],
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AnnotateError(f"callgrind_annotate {dump}: {exc}") from None
    if done.returncode != 0:
        raise AnnotateError(f"callgrind_annotate {dump} failed: {done.stderr.strip()[-300:]}")
    costs = parse(done.stdout)
    return dict(sorted(costs.items(), key=lambda item: -item[1])[:kept])  # [:None]: all
