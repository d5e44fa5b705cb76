"""The HTML of every page of the site: plain pages with a small nav, the data of a plotted page embedded in it.

A page's data is a `<script type="application/json">` element, not a file beside it: Chromium refuses fetch() and
XHR of local files, and the site must work opened from disk (file://). Tables are written here as HTML; only the
essay view and the setting pages draw, with assets/site.js and the plotly.js the site carries.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence

from vitcnn import __version__, cpu_isa
from vitcnn.history.check import UNCONFIRMED_REGRESSION, Finding
from vitcnn.history.series import METRICS as HISTORY_METRICS
from vitcnn.report.claims import Claim
from vitcnn.runfile import cpu_features
from vitcnn.site import data as site_data
from vitcnn.site.data import SettingHistory
from vitcnn.site.machines import Machine

NAV = (("index.html", "Essay view"), ("history.html", "History"), ("regressions.html", "Regressions"),
       ("machines.html", "Machines"), ("claims.html", "Claims"))
DATA_ID = "vitcnn-data"


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def embedded_json(value: object) -> str:
    """JSON that cannot end its <script> element early: '<', '>' and '&' written as \\u escapes (still JSON)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, body: str, root: str = "", current: str = "", data: object = None, kind: str = "text",
         footer: str = "") -> str:
    """A whole page. `root` leads from the page to the site's root ("" or "../../"); a page with `data` loads
    plotly.js and site.js, which draw it."""
    nav = " ".join(f'<a href="{root}{href}"' + (' aria-current="page"' if href == current else "")
                   + f">{esc(name)}</a>" for href, name in NAV)
    scripts = ""
    if data is not None:
        scripts = (f'<script type="application/json" id="{DATA_ID}">{embedded_json(data)}</script>\n'
                   f'<script src="{root}assets/plotly.min.js"></script>\n'
                   f'<script src="{root}assets/site.js"></script>\n')
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{esc(title)} · vitcnn</title>\n'
            f'<link rel="stylesheet" href="{root}assets/site.css">\n</head>\n<body data-page="{esc(kind)}">\n'
            f'<nav><span class="brand">vitcnn</span> {nav}</nav>\n<main>\n<h1>{esc(title)}</h1>\n{body}\n</main>\n'
            f'<footer>Written by vitcnn {esc(__version__)} (python -m vitcnn publish). {footer}</footer>\n'
            f'{scripts}</body>\n</html>\n')


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are HTML already (escape text with esc), columns in `numeric` right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _verdict(word: str) -> str:
    kind = "neutral" if word == UNCONFIRMED_REGRESSION else "bad" if word.lower().startswith("regression") else \
        "good" if word == "improvement" else "neutral"
    return f'<span class="verdict {kind}">{esc(word)}</span>'


# ------------------------------------------------------------------------------------------------------- pages


def essay_page(essay: dict, footer: str) -> str:
    """index.html: the essay's figures against resolution, one line per model, for the chosen machine and axes."""
    selects = "".join(f'<label>{esc(essay["axis_labels"][axis])} <select name="{esc(axis)}"></select></label>'
                      for axis in essay["axes"])
    toggles = "".join(f'<label class="toggle"><input type="checkbox" name="{esc(t["key"])}" '
                      f'data-prefix="{esc(t["prefix"])}" checked> {esc(t["label"])}</label>' for t in essay["toggles"])
    body = (
        '<p>The newest commit measured on each machine (every run of it merged; a setting measured several times '
        'shows its median run). Each point is the fastest setting of one model at one resolution for the choices '
        'below, over the attention kernels and memory layouts (the report\'s best setting, ties to the smallest '
        'setting id). Throughput is images per second, latency the median per call, memory the activation peak '
        'above weights and input.</p>\n'
        f'<form id="choices">{selects}<span class="toggles">{toggles}</span></form>\n'
        '<p id="machine-note" class="note"></p>\n'
        '<noscript><p class="warning">The figures need JavaScript (assets/plotly.min.js and assets/site.js, both in '
        'this folder: nothing is loaded from the network).</p></noscript>\n'
        '<div id="plots"></div>\n<h2>Not plotted</h2>\n<ul id="failures"></ul>')
    if not essay["groups"]:
        body = "<p>No runs in this store yet: add some with <code>python -m vitcnn history add</code>.</p>"
    return page("Essay view: the newest runs", body, current="index.html", data=essay, kind="essay", footer=footer)


def history_index(histories: list[SettingHistory], machines: list[Machine], footer: str) -> str:
    """history.html: every setting of every machine, linked to its history page, with its change points."""
    labels = {m.key: m.label for m in machines}
    tracked = ", ".join(m.label for m in HISTORY_METRICS.values())
    parts = [(f"<p>Every setting measured on each machine, with the number of commits measured and the change "
              f"points found in its series ({esc(tracked)}). Open a setting for its history.</p>")]
    by_machine: dict[str, list[SettingHistory]] = {}
    for h in histories:
        by_machine.setdefault(h.machine, []).append(h)
    for machine, own in by_machine.items():
        parts.append(f"<h2>{esc(labels.get(machine, machine))}</h2>\n<p class=\"note\">{esc(machine)}</p>")
        rows = []
        for h in own:
            held = [w for w in site_data.verdicts(h.findings) if w == UNCONFIRMED_REGRESSION]
            state = _verdict("REGRESSION") if h.failing else _verdict(held[0]) if held else \
                esc(f"{len(h.findings)} change point(s)") if h.findings else "no change point"
            rows.append([f'<a href="{esc(h.path)}">{esc(h.setting_id)}</a>', esc(len(h.commits)), state])
        parts.append(table(["setting", "commits", "change points"], rows, numeric=(1,)))
    if not histories:
        parts.append("<p>No series yet: runs need a commit (a clean tree) to be placed in a history.</p>")
    return page("History per setting", "\n".join(parts), current="history.html", footer=footer)


def setting_page(history: SettingHistory, label: str, footer: str) -> str:
    """A setting's history on one machine: each metric over commits with its change points marked."""
    figures = site_data.history_figures(history)
    rows = [[_verdict(word), esc(f.change.series.metric.label), esc(site_data.change_range(f.change)),
             esc(site_data.change_size(f.change)), esc(confirmation)]
            for f, word, confirmation in zip(history.findings, site_data.verdicts(history.findings),
                                             site_data.confirmations(history.findings))]
    steps = table(["verdict", "metric", "commits (last good..first bad)", "change", "confirmation"], rows,
                  numeric=(3,)) if rows else "<p>No change point in any metric of this setting.</p>"
    body = (f'<p class="note">{esc(label)} ({esc(history.machine)}), {len(history.commits)} commit(s). Each point '
            'is the median of the runs of its commit; a dotted line marks a change point (ruptures PELT on log '
            'values), labelled with the last good and first bad commit, the change of the segment medians, the '
            'verdict and what confirmed it (grey: nothing did, it may be the machine).</p>\n'
            f'<h2>Change points</h2>\n{steps}\n'
            + "".join(f'<div class="plot" id="{esc(f["div"])}"></div>\n' for f in figures))
    return page(history.setting_id, body, root="../../", data={"figures": figures}, kind="history", footer=footer)


def regressions_page(found: list[Finding], histories: list[SettingHistory], labels: dict[str, str],
                     footer: str) -> str:
    """regressions.html: every change point that is a regression, newest first, with `history check`'s words."""
    pages = {(h.machine, h.setting_id): h.path for h in histories}
    regressions = [f for f in found if f.regression]
    rows = []
    for f, word, confirmation in zip(regressions, site_data.verdicts(regressions),
                                     site_data.confirmations(regressions)):
        c = f.change
        s = c.series
        link = f'<a href="{esc(pages[(s.machine, s.setting_id)])}">{esc(s.setting_id)}</a>'
        machine = f'{esc(labels.get(s.machine, s.machine))}<br><span class="note">{esc(s.machine)}</span>'
        rows.append([_verdict(word), machine, link, esc(s.metric.label),
                     esc(site_data.change_range(c)), esc(f"{c.before * s.metric.scale:.4g} {s.metric.unit}"),
                     esc(f"{c.after * s.metric.scale:.4g} {s.metric.unit}"), esc(site_data.change_size(c)),
                     esc(confirmation)])
    tolerance = ", ".join(f"{name} {value:.0%}" for name, value in site_data.tolerances().items())
    intro = ("<p>Every change point that grew a metric beyond its tolerance (" + esc(tolerance) + "), newest first, "
             "in the words of <code>python -m vitcnn history check</code>. <b>REGRESSION</b>: confirmed, and its "
             "series still ends above the level before it (the check exits 1); <b>regression (not confirmed)</b>: "
             "the series still ends above it, but nothing the machine cannot move (an instruction count, an A/B "
             "of the two commits) confirms the step, so it may be the machine's and does not fail the check; "
             "<b>regression (undone later)</b>: later changes brought the series back. The last column says what "
             "confirmed each, or why nothing did (a deterministic metric confirms itself). "
             f"{len(found) - len(regressions)} other change point(s) (improvements, changes within tolerance) are on "
             "the setting pages.</p>")
    body = intro + (table(["verdict", "machine", "setting", "metric", "commits (last good..first bad)", "before",
                           "after", "change", "confirmation"], rows, numeric=(5, 6, 7))
                    if rows else "<p>No regression found.</p>")
    return page("Regressions", body, current="regressions.html", footer=footer)


def machines_page(machines: list[Machine], footer: str) -> str:
    """machines.html: each machine's identity (CPU kernel features or GPU) and the software of each of its runs."""
    parts = []
    for m in machines:
        fp = m.fingerprint
        facts = [("slug", m.key), ("device", m.label)]
        if fp.get("device") == "cuda" or fp.get("gpu_name"):
            facts += [(name, fp.get(key)) for name, key in (
                ("GPU", "gpu_name"), ("board", "gpu_board"), ("MIG", "gpu_mig"), ("ECC", "gpu_ecc"),
                ("SMs", "gpu_sm_count"), ("memory (GiB)", "gpu_memory_bytes"), ("driver", "driver"), ("CUDA", "cuda"),
                ("power limit (W)", "gpu_power_limit_w"))]
            facts = [(n, f"{v / 2**30:.0f}" if n == "memory (GiB)" and isinstance(v, (int, float)) else v)
                     for n, v in facts]
        features, source = cpu_features(fp, m.latest_run.machine_cpu)
        tier = cpu_isa.tier_label(features)
        facts += [("CPU", f"{fp.get('cpu_model', 'unknown')}, {fp.get('cpu_count', '?')} cores"),
                  ("CPU kernel features", (", ".join(features) + f" (from {source})") if features else "not recorded"),
                  ("kernel tier", tier or "-"), ("torch threads", fp.get("torch_threads", "-"))]
        parts.append(f"<h2>{esc(m.label)}</h2>\n" + table(["", ""], ([esc(k), esc(v)] for k, v in facts
                                                                        if v is not None)))
        rows = []
        for entry, run in reversed(m.runs):
            software = run.fingerprint
            commit = (entry.commit or "no commit")[:10] + (" (dirty)" if entry.dirty else "")
            rows.append([esc(entry.key), esc(commit), esc(entry.commit_time), esc(entry.run_time),
                         esc(run.selection), esc(software.get("torch")), esc(software.get("timm")),
                         esc(software.get("python"))])
        parts.append(f"<h3>Runs ({len(rows)}, newest first)</h3>\n"
                     + table(["run", "commit", "commit time", "run time", "profile", "torch", "timm", "python"], rows))
    return page("Machines", "\n".join(parts) or "<p>No runs.</p>", current="machines.html", footer=footer)


def claims_page(checked: list[tuple[Machine, list[Claim]]], footer: str) -> str:
    """claims.html: the essay's claims checked on each machine's newest results, as report.md checks them."""
    parts = [("<p>Each claim is checked per machine on the best (fastest ok) setting of each point of its newest "
              "commit's runs; NOT MEASURED says what is missing.</p>")]
    for m, found in checked:
        rows = [[f'<span class="verdict {esc(c.verdict.lower().replace(" ", "-"))}">{esc(c.verdict)}</span>',
                 esc(c.name), esc(c.evidence)] for c in found]
        parts.append(f"<h2>{esc(m.label)}</h2>\n<p class=\"note\">{esc(m.key)}, commit "
                     f"{esc((m.commit or 'none')[:10])}</p>\n" + table(["verdict", "claim", "evidence"], rows))
    return page("Claims check", "\n".join(parts), current="claims.html", footer=footer)
