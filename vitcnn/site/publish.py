"""`python -m vitcnn publish STORE --out DIR`: write the site of a history store into a directory.

The directory must be new, empty, or a site this wrote before (it holds the marker file MARKER, which lists the
files of that site). Anything else is refused: the site never writes into, let alone deletes, a folder of someone
else's files. Re-publishing rewrites the site's pages and removes the pages of the earlier site that the new one
no longer has (only files the marker lists). Every page is written to a temporary file and renamed into place, so
a reader never sees half a page. plotly.min.js is copied from the installed `plotly` package: the site loads
nothing from the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

from vitcnn.history import series as history_series
from vitcnn.history.check import findings
from vitcnn.history.store import HistoryStore
from vitcnn.site import data, pages
from vitcnn.site.machines import machines as machines_of

MARKER = ".vitcnn-site"
ASSETS = ("site.js", "site.css")


class PublishError(ValueError):
    """The site cannot be written: the output is not ours to write into, or plotly is not installed."""


def check_target(out: Path) -> list[str]:
    """Refuse an output that is not a directory we may write into; return the files the earlier site listed."""
    if out.exists() and not out.is_dir():
        raise PublishError(f"refusing to write into {out}: it is a file, not a directory")
    marker = out / MARKER
    if not out.exists() or not any(out.iterdir()):
        return []
    if not marker.is_file():
        raise PublishError(f"refusing to write into {out}: it is not empty and is not a site written by vitcnn "
                           f"publish (no {MARKER} file); choose a new or empty directory")
    try:
        listed = json.loads(marker.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []  # our marker, but unreadable: keep every file rather than guess
    return [name for name in listed if isinstance(name, str)]


def plotly_js() -> tuple[str, str]:
    """(plotly.min.js, its version) from the installed plotly package (the `site` extra)."""
    try:
        from plotly.offline import get_plotlyjs, get_plotlyjs_version
    except ImportError as exc:
        raise PublishError(f"the site needs the plotly package ({exc}); pip install 'vitcnn[site]'") from None
    return get_plotlyjs(), get_plotlyjs_version()


def render(store: HistoryStore, plotly_version: str) -> dict[str, str]:
    """Every page of the site, by path relative to its root."""
    runs = list(store.runs())
    machines = machines_of(runs)
    built = history_series.build((entry.key, run) for entry, run in runs)
    found = findings(built)
    histories = data.setting_histories(built, found)
    labels = {m.key: m.label for m in machines}
    newest = max((e.run_time for e, _ in runs if e.run_time), default="none")
    footer = (f"{len(runs)} run(s) of {len(machines)} machine(s), newest run {pages.esc(newest)}; "
              f"plotly.js {pages.esc(plotly_version)}, carried in assets/.")
    site = {
        "index.html": pages.essay_page(data.essay(machines), footer),
        "history.html": pages.history_index(histories, machines, footer),
        "regressions.html": pages.regressions_page(found, histories, labels, footer),
        "machines.html": pages.machines_page(machines, footer),
        "claims.html": pages.claims_page([(m, data.claims(m)) for m in machines], footer),
    }
    for history in histories:
        if history.path in site:
            raise PublishError(f"two settings map to the page {history.path}")
        site[history.path] = pages.setting_page(history, labels.get(history.machine, history.machine), footer)
    return site


def publish(store: HistoryStore, out: str | Path) -> Path:
    """Write the site of `store` into `out` (made when absent) and return its index page."""
    out = Path(out)
    earlier = check_target(out)
    script, version = plotly_js()
    site = render(store, version)
    out.mkdir(parents=True, exist_ok=True)
    files = {**{f"assets/{name}": (resources.files("vitcnn.site") / "assets" / name).read_text()
                for name in ASSETS},
             "assets/plotly.min.js": script, **site}
    _write(out / MARKER, json.dumps({"vitcnn_site": 1, "files": sorted(set(earlier) | set(files))}) + "\n")
    for name, text in files.items():
        _write(out / name, text)
    _remove_stale(out, set(earlier) - set(files))
    _write(out / MARKER, json.dumps({"vitcnn_site": 1, "files": sorted(files)}, indent=1) + "\n")
    return out / "index.html"


def _write(path: Path, text: str) -> None:
    """Write a whole file under a temporary name and rename it into place; an unchanged file is left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = text.encode()
    with contextlib.suppress(OSError):
        if path.stat().st_size == len(encoded) and path.read_bytes() == encoded:
            return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(encoded)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remove_stale(out: Path, names: set[str]) -> None:
    """Remove the earlier site's files the new one does not have, and folders they leave empty; a name that
    leads outside `out` is ignored."""
    root = out.resolve()
    for name in sorted(names):
        path = (out / name).resolve()
        if root not in path.parents or not path.is_file():
            continue
        path.unlink()
        with contextlib.suppress(OSError):
            for parent in path.parents:
                if parent == root:
                    break
                parent.rmdir()  # only succeeds when empty
