"""Where a `vitcnn ab` session's worker processes come from: fresh forks of a template per setting (the default on a
CPU), or the same long-lived processes for every setting.

A worker that had set up and timed other settings before ran a setting several % off its twins for as long as it
held it, where fresh processes agreed within about 1% (docs/results.md, "Process history"): with `fresh`, each side
has one template process (vitcnn/workers/template.py) and every setting gets new forks of it, closed after the
setting finishes, so no setting is measured in a process that ran another. Forking takes milliseconds where a new
interpreter takes seconds to import torch. Long-lived workers (`fresh` off) are primed instead: a process's first
setup is set up once untimed and freed before any setting is measured in it.
"""

from __future__ import annotations

from pathlib import Path

from vitcnn.ab.sides import Side
from vitcnn.settings import Setting, invalid_reason
from vitcnn.workers.checkout import Checkout
from vitcnn.workers.process import RunningWorker, WorkerProcess, WorkerTemplate


class Pools:
    """The workers of both sides: `processes` per side for each setting (`take`), given back after it (`give_back`)."""

    def __init__(self, sides: tuple[Side, Side], checkouts: list[Checkout], worker_args: list[str], processes: int,
                 fresh: bool, logs: Path) -> None:
        self.processes, self.fresh, self.logs = processes, fresh, logs
        self.templates: dict[str, WorkerTemplate] = {}
        self.workers: dict[str, list[RunningWorker]] = {"A": [], "B": []}
        self.taken = 0
        try:
            for side, checkout in zip(sides, checkouts):
                name = side.name.lower()
                if fresh:
                    self.templates[side.name] = WorkerTemplate(side, checkout, worker_args,
                                                               logs / f"{name}-template.log")
                else:  # all started before any hello: their imports overlap
                    for k in range(processes):
                        self.workers[side.name].append(WorkerProcess(side, checkout, worker_args,
                                                                     logs / f"{name}{k}.log"))
        except BaseException:
            self.close()
            raise

    def hello(self) -> dict[str, list[dict]]:
        """Every long-lived worker's hello, or one fork's per side (forks are the template's copies)."""
        if not self.fresh:
            return {name: [w.request("hello") for w in self.workers[name]] for name in "AB"}
        hellos = {}
        for name, template in self.templates.items():
            worker = template.fork(self.logs / f"{name.lower()}-hello.log")
            try:
                hellos[name] = [{**worker.request("hello"), "template_pid": template.process.pid}]
            finally:
                worker.close()
        return hellos

    def take(self, count: int | None = None) -> dict[str, list[RunningWorker]]:
        """The workers for the next setting (or explanation): new forks, or the long-lived ones."""
        if not self.fresh:
            return self.workers
        self.taken += 1
        return {name: [template.fork(self.logs / f"{name.lower()}{k}-{self.taken}.log")
                       for k in range(count or self.processes)] for name, template in self.templates.items()}

    def give_back(self, pools: dict[str, list[RunningWorker]]) -> None:
        """Done with a setting's workers: forks exit; long-lived workers stay for the next setting."""
        if self.fresh:
            for worker in pools["A"] + pools["B"]:
                worker.close()

    def prime(self, settings: list[tuple[Setting, Setting]], device_type: str) -> None:
        """Long-lived workers only: set the first setting valid on both sides up once in every worker, untimed, and
        free it. A process's first setup ran at a lasting offset of its own (an eager NF-Net 16% and 25% away from
        its twin in 2 of 4 fresh process pairs, under glibc's own malloc policy), the second one within 1%
        (docs/results.md): no setting is then measured in a process's first setup."""
        first = next(((a, b) for a, b in settings if not invalid_reason(a, device_type)
                      and not invalid_reason(b, device_type)), None)
        if self.fresh or first is None:
            return
        everyone = [(w, first[0] if name == "A" else first[1]) for name in "AB" for w in self.workers[name]]
        for worker, setting in everyone:
            worker.send("setup", setting=setting.as_dict())
        for worker, _ in everyone:
            worker.receive("setup")  # a failure here is reported where the setting is measured
        for worker, _ in everyone:
            worker.send("free")
        for worker, _ in everyone:
            worker.receive("free")

    def close(self) -> None:
        for worker in self.workers["A"] + self.workers["B"]:
            worker.close()
        for template in self.templates.values():
            template.close()
