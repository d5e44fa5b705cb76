"""One `vitcnn ab` session as a question with an answer: is B worse than A on these settings? For the commands that
ask it over and over (`vitcnn bisect`, `vitcnn history check --confirm ab`).

A probe runs the whole session (vitcnn/ab/driver.py, or counted.py for instructions) with its --json output in a
temporary file and reads the verdicts back from that file: the same record a user gets, no second path. An
`inconclusive` answer can be asked again with more processes per side (`settle`), so a search never takes a step on
a measurement that could not tell.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from vitcnn.ab.design import ABOptions

# What a probe says about B against A, over all its settings.
BAD, GOOD, UNDECIDED, FAILED = "bad", "good", "undecided", "failed"
RAN = ("ok", "oom")  # B's statuses that answer: running out of memory where A did not is a regression (now-oom)


@dataclass(frozen=True)
class Probe:
    """One session's outcome: its exit code, every setting's row of the --json output and its Markdown table."""

    exit_code: int
    rows: list[dict]
    markdown: str
    processes: int  # the most processes per side the session was allowed

    @property
    def answer(self) -> str:
        """FAILED: the session did not run, or a setting did not run on a side (an error, a skip: nothing is known
        of its speed there; B running out of memory is an answer); BAD: some setting is a regression; UNDECIDED: no
        regression, but some setting could not tell; GOOD: none is a regression or inconclusive."""
        if self.exit_code == 2 or not self.rows:
            return FAILED
        if any(row["status"]["A"] != "ok" or row["status"]["B"] not in RAN for row in self.rows):
            return FAILED  # a setting that errors (or did not run) at a candidate says nothing about its speed
        if any(row["verdict"]["regression"] for row in self.rows):
            return BAD
        if any("inconclusive" in row["verdict"]["labels"] for row in self.rows):
            return UNDECIDED
        return GOOD

    def regressions(self) -> list[dict]:
        return [row for row in self.rows if row["verdict"]["regression"]]


def probe(options: ABOptions) -> Probe:
    """Run the session `options` describe (its own --json/--markdown outputs are replaced) and read its verdicts."""
    from vitcnn.ab import driver

    with tempfile.TemporaryDirectory(prefix="vitcnn-probe-") as tmp:
        json_path, markdown_path = Path(tmp) / "ab.json", Path(tmp) / "ab.md"
        code = driver.run(replace(options, json_path=json_path, markdown=markdown_path))
        data = json.loads(json_path.read_text()) if json_path.is_file() else {"settings": []}
        markdown = markdown_path.read_text() if markdown_path.is_file() else ""
    return Probe(code, data["settings"], markdown, options.processes)


def settle(options: ABOptions, max_processes: int) -> list[Probe]:
    """Probe, and while the answer is UNDECIDED ask again with twice the processes per side, up to `max_processes`
    (a timed session only: a count does not become surer). Every probe is returned, the last one decides."""
    probes = [probe(options)]
    while (probes[-1].answer == UNDECIDED and options.metric == "time"
           and options.processes < max_processes):
        options = replace(options, processes=min(max_processes, 2 * options.processes))
        probes.append(probe(options))
    return probes
