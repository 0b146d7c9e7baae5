"""End-to-end tests in a real headless Chromium against a Uvicorn server on 127.0.0.1: explorer paging, sorting
and filtering, the viewer switching model and method (with an X-Map computed on demand), the upload flow.

Screenshots go to ``$XFV_SCREENSHOT_DIR`` (default: a temporary folder).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest_web import SAMPLE, SECOND_MODEL, sample_copy, second_model
from PIL import Image

from xfv.cli.platform import sample_root
from xfv.jobs.precompute import precompute
from xfv.models import create_model
from xfv.web.core.config import Settings
from xfv.web.main import create_app

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, isolated_cache):
    """Uvicorn on a free loopback port over a copy of the sample, with results of three models (lbp, lbp-grid4,
    sface; no X-Maps stored for the last two)."""
    import uvicorn

    path = tmp_path_factory.mktemp("browser-db") / "sample.db"
    factory = sample_copy(tmp_path_factory, path)
    precompute(factory, SAMPLE, second_model(), xmaps=0)
    precompute(factory, SAMPLE, create_model("sface"), xmaps=0)
    app = create_app(Settings(db_url=f"sqlite:///{path}", upload_model="lbp"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    directory = Path(os.environ.get("XFV_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def wait(driver, condition, timeout: float = 90):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def rows(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#pairs tbody tr")


def column(driver, group: str, model: str = "lbp") -> list[str]:
    """The cells of one column (per-model columns: of ``model``); stars give their exact value (title)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(`#pairs tbody td[data-group='${arguments[0]}']`)]"
        ".filter(td => !td.dataset.model || td.dataset.model === arguments[1])"
        ".map(td => td.querySelector('[title]') ? td.querySelector('[title]').title : td.textContent)", group, model)


def image_loaded(driver, selector: str) -> bool:
    return driver.execute_script(
        "const img = document.querySelector(arguments[0]); return !!img && img.complete && img.naturalWidth > 0", selector)


def select(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, element_id)).select_by_value(value)


def test_landing_page_shows_counts_plot_and_preview(browser, server, screenshots):
    browser.get(server + "/")
    wait(browser, lambda d: image_loaded(d, "img.plot") and image_loaded(d, "#preview img"))
    text = browser.find_element("id", "datasets").text
    assert SAMPLE in text and "lbp" in text and SECOND_MODEL in text
    browser.save_screenshot(str(screenshots / "landing.png"))


def test_explorer_pages_sorts_and_filters(browser, server, screenshots):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/explorer?dataset={SAMPLE}&model=lbp")
    wait(browser, lambda d: len(rows(d)) == 20)
    assert browser.find_element(By.ID, "total").text == "60 pairs"
    wait(browser, lambda d: image_loaded(d, "#pairs tbody tr:nth-child(1) .thumbs img"))

    select(browser, "page_size", "10")
    wait(browser, lambda d: len(rows(d)) == 10)
    first_page = column(browser, "id")
    browser.find_element(By.ID, "next").click()
    wait(browser, lambda d: d.find_element(By.ID, "page-info").text == "page 2 of 6")
    wait(browser, lambda d: column(d, "id") != first_page)
    assert [int(i) for i in column(browser, "id")] == [int(i) + 10 for i in first_page]

    header = browser.find_element(By.CSS_SELECTOR, "th[data-sort='confidence'][data-model='lbp']")
    header.click()
    wait(browser, lambda d: "sort=confidence" in d.current_url and d.find_element(By.ID, "page-info").text == "page 1 of 6")
    ascending = [float(c) for c in column(browser, "confidence")]
    assert ascending == sorted(ascending)
    browser.find_element(By.CSS_SELECTOR, "th[data-sort='confidence'][data-model='lbp']").click()
    wait(browser, lambda d: "sort=-confidence" in d.current_url)
    wait(browser, lambda d: [float(c) for c in column(d, "confidence")] == sorted(
        (float(c) for c in column(d, "confidence")), reverse=True))
    assert float(column(browser, "confidence")[0]) >= max(ascending)

    select(browser, "label", "different")
    wait(browser, lambda d: d.find_element(By.ID, "total").text == "30 pairs")
    assert set(column(browser, "label")) == {"different"}
    select(browser, "correct", "false")
    wait(browser, lambda d: set(column(d, "correct")) <= {"✗"} and d.find_element(By.ID, "total").text != "30 pairs")
    select(browser, "correct", "")
    browser.find_element(By.ID, "identity").send_keys("Abdullah")
    wait(browser, lambda d: rows(d) and all("Abdullah" in a + b for a, b in zip(column(d, "identity1"), column(d, "identity2"))))

    toggle = browser.find_element(By.CSS_SELECTOR, "#column-toggles input[data-column='quality1']")
    browser.find_element(By.CSS_SELECTOR, ".columns summary").click()
    assert browser.find_element(By.CSS_SELECTOR, "#pairs tbody td[data-group='quality1']").is_displayed()
    toggle.click()
    assert not browser.find_element(By.CSS_SELECTOR, "#pairs tbody td[data-group='quality1']").is_displayed()
    browser.save_screenshot(str(screenshots / "explorer.png"))

    link = browser.find_element(By.CSS_SELECTOR, "#pairs tbody tr a.view")
    link.click()
    wait(browser, lambda d: "/viewer/" in d.current_url)


def test_viewer_switches_model_and_method(browser, server, screenshots):
    import httpx
    from selenium.webdriver.common.by import By

    pairs = httpx.get(f"{server}/api/pairs", params={"dataset": SAMPLE, "page_size": 100}).json()["items"]
    pair_id = next(p["id"] for p in pairs if httpx.get(f"{server}/api/pairs/{p['id']}/xmaps/lbp").json()["ready"])
    browser.get(f"{server}/viewer/{pair_id}?model=lbp&method=3")
    viewer = browser.find_element(By.ID, "viewer")
    wait(browser, lambda d: viewer.get_attribute("data-shown") == "lbp/3")
    wait(browser, lambda d: all(image_loaded(d, f"#face{i} {part}") for i in (1, 2) for part in (".base", ".overlay", ".rawmap")))
    verdict = browser.find_element(By.ID, "verdict").text
    assert "distance" in verdict and "threshold" in verdict and "confidence" in verdict and ("★" in verdict or "☆" in verdict)

    select(browser, "method", "4")
    wait(browser, lambda d: viewer.get_attribute("data-shown") == "lbp/4")
    wait(browser, lambda d: image_loaded(d, "#face1 .overlay"))
    browser.save_screenshot(str(screenshots / "viewer_method4.png"))
    select(browser, "method", "1")
    wait(browser, lambda d: viewer.get_attribute("data-shown") == "lbp/1")
    assert "/lbp/1/1.png" in browser.find_element(By.CSS_SELECTOR, "#face1 .overlay").get_attribute("src")

    slider = browser.find_element(By.ID, "opacity")
    browser.execute_script("arguments[0].value = 25; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert browser.find_element(By.CSS_SELECTOR, "#face1 .overlay").value_of_css_property("opacity") == "0.25"

    select(browser, "model", SECOND_MODEL)  # no X-Maps stored for it: computed on demand, with progress
    wait(browser, lambda d: d.find_element(By.ID, "progress").is_displayed() or viewer.get_attribute("data-shown"), 30)
    wait(browser, lambda d: viewer.get_attribute("data-shown") == f"{SECOND_MODEL}/1", 180)
    wait(browser, lambda d: image_loaded(d, "#face2 .overlay"))
    assert f"/{SECOND_MODEL}/1/2.png" in browser.find_element(By.CSS_SELECTOR, "#face2 .overlay").get_attribute("src")
    assert SECOND_MODEL in browser.find_element(By.ID, "verdict").text
    browser.save_screenshot(str(screenshots / "viewer.png"))


def test_viewer_switches_to_sface(browser, server, screenshots):
    """The real SFace model: its results are listed, its X-Maps are computed on demand with its own crop (YuNet)."""
    import httpx
    from selenium.webdriver.common.by import By

    pairs = httpx.get(f"{server}/api/pairs", params={"dataset": SAMPLE, "page_size": 100}).json()["items"]
    pair_id = next(p["id"] for p in pairs if p["label"] == "same" and "sface" in p["results"])
    browser.get(f"{server}/viewer/{pair_id}?model=lbp&method=1")
    viewer = browser.find_element(By.ID, "viewer")
    wait(browser, lambda d: viewer.get_attribute("data-shown") == "lbp/1")
    options = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
    assert {"lbp", SECOND_MODEL, "sface"} <= set(options)
    select(browser, "model", "sface")
    wait(browser, lambda d: viewer.get_attribute("data-shown") == "sface/1", 300)
    wait(browser, lambda d: all(image_loaded(d, f"#face{i} .overlay") for i in (1, 2)))
    assert "/sface/1/1.png" in browser.find_element(By.CSS_SELECTOR, "#face1 .overlay").get_attribute("src")
    verdict = browser.find_element(By.ID, "verdict").text
    assert "sface" in verdict and "distance" in verdict and "confidence" in verdict
    browser.set_window_size(1366, 1000)
    browser.save_screenshot(str(screenshots / "viewer-sface.png"))


def test_upload_flow_from_files_to_xmaps(browser, server, screenshots, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/explain")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    browser.find_element(By.ID, "image1").send_keys(str(sample_root() / "Abel_Pacheco/Abel_Pacheco_0001.jpg"))
    browser.find_element(By.ID, "image2").send_keys(str(blank))
    select(browser, "model", "lbp")
    browser.find_element(By.ID, "submit").click()
    wait(browser, lambda d: "no face" in d.find_element(By.ID, "error").text)

    browser.find_element(By.ID, "image2").clear()
    browser.find_element(By.ID, "image2").send_keys(str(sample_root() / "Abel_Pacheco/Abel_Pacheco_0004.jpg"))
    browser.find_element(By.ID, "submit").click()
    result = browser.find_element(By.ID, "result")
    wait(browser, lambda d: result.is_displayed() and image_loaded(d, "#face1 .base") and image_loaded(d, "#face2 .base"))
    assert browser.find_element(By.ID, "error").text == ""
    verdict = browser.find_element(By.ID, "verdict").text
    assert "prediction" in verdict and "confidence" in verdict and "lbp" in verdict
    wait(browser, lambda d: result.get_attribute("data-shown") == "4", 180)  # the default method
    wait(browser, lambda d: image_loaded(d, "#face1 .overlay") and image_loaded(d, "#face2 .overlay"))
    select(browser, "method", "2")
    wait(browser, lambda d: "/xmaps/2/1.png" in d.find_element(By.CSS_SELECTOR, "#face1 .overlay").get_attribute("src"))
    browser.save_screenshot(str(screenshots / "explain.png"))
