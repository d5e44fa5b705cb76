"""What a `vitcnn ab` session leaves behind: the verdict table as Markdown, every block and verdict as JSON, and
each side's run file; shared by the timed session (driver.py) and the counted one (counted.py)."""

from __future__ import annotations

from vitcnn.ab.design import ABOptions
from vitcnn.explain.diff import Explanation
from vitcnn.gate.comparison import SettingVerdict
from vitcnn.runfile import write_output


def sides_json(options: ABOptions, hello: dict[str, dict]) -> dict:
    """Each side of the session as the --json output records it: how it was asked for and what its worker said."""
    return {name: {"python": side.python, "env": side.env, "ref": side.ref, "opts": list(side.opts),
                   "worker": {k: v for k, v in hello[name].items() if k != "ok"}}
            for name, side in (("A", options.a), ("B", options.b))}


def verdict_json(v: SettingVerdict) -> dict:
    return {"labels": list(v.labels), "regression": v.regression, "ratio": v.ratio, "ci": [v.ci_low, v.ci_high],
            "p_adjusted": v.p_value, "detectable": v.detectable, "processes": v.processes, "detail": v.detail}


def explanation_json(explanations: dict[str, Explanation], setting_id: str) -> dict | None:
    """A setting's explanation in the --json output (None: its verdict needed none, or --explain off)."""
    found = explanations.get(setting_id)
    return found.to_json() if found else None


def write_outputs(options: ABOptions, markdown: str, json_data: dict) -> None:
    """The --markdown and --json outputs, where asked for."""
    if options.markdown:
        write_output(options.markdown, markdown)
    if options.json_path:
        write_output(options.json_path, json_data)
