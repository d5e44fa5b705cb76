"""The published site in a real browser: headless Chromium opens it from disk (file://, as on an air-gapped
cluster), draws every figure without a console error, and redraws when the reader chooses another batch size or
machine or switches a model family off; a setting's history page marks the planted change point.

Needs selenium, chromium and chromedriver (Debian: apt-get install chromium chromium-driver); skipped with the
reason otherwise. Screenshots go to $VITCNN_TEST_ARTIFACTS when set, else to a temporary directory (printed).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.site.conftest import OTHER_MACHINE, PLANTED_RANGE, PLANTED_SETTING, SMOKE_MACHINE, STEP_AT

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
WINDOW = "1200,900"
LOAD_TIMEOUT_S = 20

# Each figure of the page: its div id and its traces' names, legend groups and y values (Plotly keeps the traces
# it drew in the div's .data).
READ_PLOTS = """
return Array.from(document.querySelectorAll('.plot')).filter(d => d.data).map(d => ({
  id: d.id,
  traces: d.data.map(t => ({name: t.name, group: t.legendgroup || null, y: t.y})),
  shapes: (d.layout.shapes || []).map(s => ({x0: s.x0, x1: s.x1})),
  annotations: (d.layout.annotations || []).map(a => a.text),
}));
"""


def missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'selenium>=4.10')"
    if not CHROMIUM:
        return "no chromium binary on PATH (apt-get install chromium)"
    if not CHROMEDRIVER:
        return "no chromedriver on PATH (apt-get install chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={WINDOW}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(LOAD_TIMEOUT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("VITCNN_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"browser screenshots in {path}")
    return path


def severe(driver) -> list[dict]:
    """The console's errors since the last call (the log is drained by reading it)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_page(driver, path: Path, plots: int) -> list[dict]:
    """Open `path` from disk and wait until `plots` figures are drawn; return them."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    WebDriverWait(driver, LOAD_TIMEOUT_S).until(lambda d: len(d.execute_script(READ_PLOTS)) == plots)
    return driver.execute_script(READ_PLOTS)


def choose(driver, axis: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.CSS_SELECTOR, f"select[name={axis}]")).select_by_value(value)


def traces(plots: list[dict], div: str) -> dict[str, list[float]]:
    (plot,) = [p for p in plots if p["id"] == div]
    return {t["name"]: t["y"] for t in plot["traces"]}


def embedded(site: Path) -> dict:
    text = (site / "index.html").read_text()
    start = text.index('id="vitcnn-data">') + len('id="vitcnn-data">')
    return json.loads(text[start:text.index("</script>", start)])


def test_the_essay_view_draws_every_figure_from_file_without_errors(browser, planted_site, artifacts):
    plots = open_page(browser, planted_site / "index.html", plots=5)
    assert [p["id"] for p in plots] == ["plot-throughput", "plot-latency", "plot-activation_memory", "plot-flops",
                                        "plot-mfu"]
    group = next(g for g in embedded(planted_site)["groups"] if g["machine"] == SMOKE_MACHINE)
    assert traces(plots, "plot-latency") == {t["name"]: t["y"] for t in group["traces"]["latency"]}
    assert len(traces(plots, "plot-latency")) == 4
    browser.save_screenshot(str(artifacts / "essay.png"))
    assert severe(browser) == []


def test_choosing_another_batch_size_or_machine_redraws_the_series(browser, planted_site, artifacts):
    before = traces(open_page(browser, planted_site / "index.html", plots=5), "plot-throughput")
    choose(browser, "batch", "2")
    after = traces(browser.execute_script(READ_PLOTS), "plot-throughput")
    assert after.keys() == before.keys() and all(after[name] != before[name] for name in before)

    choose(browser, "machine", OTHER_MACHINE)
    assert set(traces(browser.execute_script(READ_PLOTS), "plot-throughput")) == {"vit_b16"}  # its only fp32 lines
    choose(browser, "precision", "bf16")
    assert set(traces(browser.execute_script(READ_PLOTS), "plot-throughput")) == {"vit_b16", "vitdet_b16",
                                                                                 "convnext_b"}
    options = browser.execute_script("return Array.from(document.querySelector('select[name=batch]').options)"
                                     ".map(o => o.value)")
    assert options == ["1", "8"]  # the other machine's batch sizes, not the first's
    assert OTHER_MACHINE not in browser.find_element("id", "machine-note").text
    assert "commit 6107717371" in browser.find_element("id", "machine-note").text
    browser.save_screenshot(str(artifacts / "essay-other-machine.png"))
    assert severe(browser) == []


def test_switching_vitdet_off_removes_its_lines_and_on_brings_them_back(browser, planted_site):
    from selenium.webdriver.common.by import By

    def vitdet_lines() -> int:
        return sum(t["group"].startswith("vitdet_") for p in browser.execute_script(READ_PLOTS) for t in p["traces"])

    open_page(browser, planted_site / "index.html", plots=5)
    shown = vitdet_lines()
    assert shown == 5  # one per figure for vitdet_t16 (MFU: vs measured matmul only, on a CPU)
    toggle = browser.find_element(By.CSS_SELECTOR, "input[name=vitdet]")
    toggle.click()
    assert vitdet_lines() == 0
    assert len(traces(browser.execute_script(READ_PLOTS), "plot-latency")) == 3  # the others stay
    toggle.click()
    assert vitdet_lines() == shown
    assert severe(browser) == []


def test_the_planted_settings_history_marks_the_change_at_the_planted_commit(browser, planted_site, artifacts):
    page = planted_site / "settings" / SMOKE_MACHINE / f"{PLANTED_SETTING}.html"
    plots = open_page(browser, page, plots=3)  # latency, activation memory, instructions per call
    (latency,) = [p for p in plots if p["id"] == "plot-latency"]
    assert latency["shapes"] == [{"x0": STEP_AT - 0.5, "x1": STEP_AT - 0.5}]
    (note,) = latency["annotations"]
    assert note.startswith(PLANTED_RANGE) and "<br>REGRESSION<br>confirmed by instructions +1" in note
    assert len(latency["traces"][0]["y"]) == 14
    (memory,) = [p for p in plots if p["id"] == "plot-activation_memory"]
    assert memory["shapes"] == [] and memory["annotations"] == []
    browser.save_screenshot(str(artifacts / "history-planted.png"))
    assert severe(browser) == []


@pytest.mark.parametrize("name", ["history.html", "regressions.html", "machines.html", "claims.html"])
def test_the_table_pages_open_without_errors(browser, planted_site, name):
    browser.get((planted_site / name).as_uri())
    assert browser.find_element("tag name", "nav").text.split()[:2] == ["vitcnn", "Essay"]
    assert severe(browser) == []
