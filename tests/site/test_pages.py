"""vitcnn/site/pages.py: every page of a published site links where it says, loads nothing from the network, and
says what the history check and the claims check say."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.site.conftest import CONFIRMED, OTHER_MACHINE, PLANTED, PLANTED_RANGE, PLANTED_SETTING, SMOKE_MACHINE
from vitcnn.site import pages
from vitcnn.site.pages import DATA_ID, NAV


class Links(HTMLParser):
    """The href/src attributes of a page and the text of its embedded data element."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.data: str | None = None
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.targets += [attrs[k] for k in ("href", "src") if k in attrs]
        self._in_data = tag == "script" and attrs.get("id") == DATA_ID

    def handle_data(self, text):
        if self._in_data:
            self.data = (self.data or "") + text

    def handle_endtag(self, tag):
        self._in_data = False


def parsed(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text())
    return links


def all_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_embedded_json_cannot_close_its_script_and_reads_back():
    value = {"text": "</script><script>alert(1)</script> & <!-- x", "n": [1.5, None]}
    text = pages.embedded_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_every_page_has_the_nav_and_every_link_and_script_is_a_local_file(planted_site):
    found = all_pages(planted_site)
    assert len(found) == 5 + 32 + 14
    for page in found:
        links = parsed(page)
        nav = [t for t in links.targets if t.endswith(tuple(href for href, _ in NAV))]
        assert {Path(t).name for t in nav} >= {href for href, _ in NAV}, page
        for target in links.targets:
            assert not re.match(r"[a-z]+:", target), f"{page}: {target} is not a relative path"
            assert (page.parent / target).resolve().is_file(), f"{page}: {target} does not exist"


def test_plotted_pages_embed_their_data_and_load_the_carried_plotly(planted_site):
    for page in (planted_site / "index.html", planted_site / "settings" / SMOKE_MACHINE / f"{PLANTED_SETTING}.html"):
        links = parsed(page)
        assert json.loads(links.data)
        scripts = [t for t in links.targets if t.endswith(".js")]
        assert [Path(s).name for s in scripts] == ["plotly.min.js", "site.js"]
    assert parsed(planted_site / "machines.html").data is None  # tables only: no script


def test_the_regressions_page_lists_each_planted_setting_with_the_check_verdict_and_a_link(planted_site):
    """vit_t16 at 2 resolutions x 2 batches x 2 compile modes: at 64 px the latency (confirmed by the counts) and
    the counts (by themselves) fail; at 128 px the counts stayed flat, so the latency's step is listed, not
    confirmed."""
    text = (planted_site / "regressions.html").read_text()
    rows = re.findall(r"<tr>(.*?)</tr>", text)[1:]
    assert len(rows) == 12
    for row in rows:
        assert PLANTED_RANGE in row and SMOKE_MACHINE in row
        (link,) = re.findall(r'href="([^"]+)"', row)
        assert Path(link).name.startswith(PLANTED) and (planted_site / link).is_file()
        confirmed = Path(link).name.startswith(CONFIRMED)
        assert (">REGRESSION<" in row) is confirmed
        assert confirmed or ('"verdict neutral">regression (not confirmed)<' in row
                             and "<td>machine drift, not confirmed (instructions flat, " in row)
    assert sum("<td>confirmed by instructions +1" in row for row in rows) == 4
    assert sum("<td>confirmed by itself (deterministic)</td>" in row for row in rows) == 4
    assert "vitdet_t16" not in text and "convnext_atto" not in text


def test_the_history_index_links_every_setting_and_flags_the_planted_ones(planted_site):
    text = (planted_site / "history.html").read_text()
    state = r'href="settings/[^/]+/([^"]+)\.html">[^<]+</a></td><td class="num">\d+</td><td><span class="verdict '
    flagged = re.findall(state + r'bad">REGRESSION<', text)
    held = re.findall(state + r'neutral">regression \(not confirmed\)<', text)
    assert len(flagged) == 4 and all(name.startswith(CONFIRMED) for name in flagged)
    assert len(held) == 4 and all(name.startswith(PLANTED) and name not in flagged for name in held)


def test_the_machines_page_shows_identity_and_each_runs_software(planted_site):
    text = (planted_site / "machines.html").read_text()
    assert SMOKE_MACHINE in text and OTHER_MACHINE in text
    assert "amx_tile" in text and "(from vitcnn)" in text and "(from py-cpuinfo)" in text
    assert text.count("2.14.1+cu130") >= 14 and "1.0.31" in text and "3.11.7" in text
    assert len(re.findall(r"<tr><td>[0-9a-f]{16}</td>", text)) == 15


def test_the_claims_page_has_each_machines_claims(planted_site):
    text = (planted_site / "claims.html").read_text()
    assert text.count("<h2>") == 2
    assert text.count("vit_b16 runs at &gt;= 100 img/s") == 2
    assert re.search(r'verdict (pass|fail|not-measured)">(PASS|FAIL|NOT MEASURED)<', text)


@pytest.mark.parametrize("name", ["index.html", "history.html", "regressions.html", "machines.html", "claims.html"])
def test_the_current_page_is_marked_in_the_nav(planted_site, name):
    assert f'<a href="{name}" aria-current="page">' in (planted_site / name).read_text()
