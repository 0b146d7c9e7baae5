"""The explain page in a real headless Chromium while an upload's X-Maps are computed: a partial map first, refined
in place by the final one, the time left, and a Cancel that stops the work."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest_web import sample_copy
from faults import LiveServer, slow_down_lbp
from test_browser import CHROMEDRIVER, CHROMIUM, chromium, image_loaded, select, wait

from xfv.cli.platform import sample_root
from xfv.web.core.config import Settings
from xfv.web.main import create_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"),
]
PARTIAL = re.compile(r"(32|64|128|256|512) of 1058 masks")


def submit_pair(driver, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/explain")
    for i, name in ((1, "Abel_Pacheco_0001.jpg"), (2, "Abel_Pacheco_0004.jpg")):
        driver.find_element(By.ID, f"image{i}").send_keys(str(sample_root() / "Abel_Pacheco" / name))
    select(driver, "model", "lbp")
    driver.find_element(By.ID, "submit").click()


def test_the_explain_page_shows_a_partial_map_refines_it_to_the_final_one_and_cancels(tmp_path_factory, tmp_path,
                                                                                      isolated_cache, monkeypatch):
    import httpx
    from selenium.webdriver.common.by import By

    slow_down_lbp(monkeypatch, 0.1)  # ~7 s of X-Maps: long enough to see them arrive
    shots = Path(os.environ.get("XFV_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sample.db"
    sample_copy(tmp_path_factory, path)
    settings = Settings(db_url=f"sqlite:///{path}", upload_model="lbp")
    driver = chromium(tmp_path / "profile")
    try:
        with LiveServer(create_app(settings), settings) as server:
            submit_pair(driver, server.url)
            result = driver.find_element(By.ID, "result")
            # the default view (method 4) appears while the task still runs, fitted on part of its masks
            wait(driver, lambda d: PARTIAL.fullmatch(result.get_attribute("data-stage") or "")
                 and image_loaded(d, "#face1 .overlay") and image_loaded(d, "#face2 .overlay"), 60)
            partial_src = driver.find_element(By.CSS_SELECTOR, "#face1 .overlay").get_attribute("src")
            assert "/xmaps/4/1.png" in partial_src and "masks" in partial_src
            assert "Partial map" in driver.find_element(By.ID, "map-stage").text
            assert driver.find_element(By.ID, "cancel").is_displayed()
            assert not driver.find_element(By.ID, "downloads").is_displayed()
            wait(driver, lambda d: "left" in d.find_element(By.CSS_SELECTOR, "#progress .text").text, 30)
            driver.save_screenshot(str(shots / "explain-partial.png"))
            upload_id = driver.execute_script("return current.id")
            state = httpx.get(f"{server.url}/api/uploads/{upload_id}").json()
            assert state["task"]["state"] == "running"  # seen partial before the task ended
            # then replaced in place by the final map, once the task is done
            wait(driver, lambda d: result.get_attribute("data-stage") == "final"
                 and not d.find_element(By.ID, "progress").is_displayed(), 120)
            wait(driver, lambda d: image_loaded(d, "#face1 .overlay") and image_loaded(d, "#face2 .overlay"))
            final_src = driver.find_element(By.CSS_SELECTOR, "#face1 .overlay").get_attribute("src")
            assert final_src != partial_src and final_src.endswith("v=final")
            assert driver.find_element(By.ID, "map-stage").text == ""
            assert not driver.find_element(By.ID, "cancel").is_displayed()
            assert driver.find_element(By.ID, "downloads").is_displayed()
            assert httpx.get(f"{server.url}/api/uploads/{upload_id}").json()["task"]["state"] == "done"
            driver.save_screenshot(str(shots / "explain-final.png"))

            # Cancel: the work stops, the page says so, nothing is stored
            submit_pair(driver, server.url)
            result = driver.find_element(By.ID, "result")  # a new page
            wait(driver, lambda d: PARTIAL.fullmatch(result.get_attribute("data-stage") or ""), 60)
            cancelled_id = driver.execute_script("return current.id")
            assert cancelled_id != upload_id
            driver.find_element(By.ID, "cancel").click()
            wait(driver, lambda d: "Cancelled" in d.find_element(By.ID, "task-error").text, 30)
            assert not driver.find_element(By.ID, "progress").is_displayed()
            state = httpx.get(f"{server.url}/api/uploads/{cancelled_id}").json()
            assert state["task"]["state"] == "cancelled" and state["map_states"] == {}
            assert httpx.get(f"{server.url}/api/uploads/{cancelled_id}/xmaps/4/1.png").status_code == 404
            assert not driver.find_element(By.CSS_SELECTOR, "#face1 .overlay").is_displayed()
            driver.save_screenshot(str(shots / "explain-cancelled.png"))
    finally:
        driver.quit()


def test_the_viewer_shows_a_partial_map_of_a_stored_pair_then_the_final_one_and_cancels(tmp_path_factory, tmp_path,
                                                                           monkeypatch):
    import httpx
    from conftest_web import SAMPLE
    from selenium.webdriver.common.by import By

    slow_down_lbp(monkeypatch, 0.1)  # ~7 s of X-Maps: long enough to see them arrive
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "cache"))  # the pair's faces embedded, not read back
    shots = Path(os.environ.get("XFV_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sample.db"
    sample_copy(tmp_path_factory, path)
    settings = Settings(db_url=f"sqlite:///{path}")
    driver = chromium(tmp_path / "profile")
    try:
        with LiveServer(create_app(settings), settings) as server:
            items = httpx.get(f"{server.url}/api/pairs", params={"dataset": SAMPLE, "page_size": 100}).json()["items"]
            pair_id = next(item["id"] for item in items
                           if not httpx.get(f"{server.url}/api/pairs/{item['id']}/xmaps/lbp").json()["ready"])
            driver.get(f"{server.url}/viewer/{pair_id}?model=lbp&method=4")
            viewer = driver.find_element(By.ID, "viewer")
            pending = driver.find_element(By.ID, "pending")
            wait(driver, lambda d: pending.is_displayed())
            pending.find_element(By.CSS_SELECTOR, "button.compute").click()
            # method 4's map appears while the task still runs, fitted on part of its masks, before anything is stored
            wait(driver, lambda d: PARTIAL.fullmatch(viewer.get_attribute("data-stage") or "")
                 and image_loaded(d, "#face1 .overlay") and image_loaded(d, "#face2 .overlay"), 60)
            partial_src = driver.find_element(By.CSS_SELECTOR, "#face1 .overlay").get_attribute("src")
            assert f"/api/pairs/{pair_id}/xmaps/lbp/4/1.png" in partial_src and "masks" in partial_src
            assert "Partial map" in driver.find_element(By.ID, "map-stage").text
            assert "refined as the computation goes on" in driver.find_element(By.ID, "map-stage").text
            assert driver.find_element(By.ID, "cancel").is_displayed()
            assert viewer.get_attribute("data-shown") == ""  # not final yet
            wait(driver, lambda d: "left" in d.find_element(By.CSS_SELECTOR, "#progress .text").text, 30)
            driver.save_screenshot(str(shots / "viewer-partial.png"))
            state = httpx.get(f"{server.url}/api/pairs/{pair_id}/xmaps/lbp").json()
            assert state["task"]["state"] == "running" and not state["ready"]  # seen partial before the task ended
            # then replaced in place by the stored final map
            wait(driver, lambda d: viewer.get_attribute("data-shown") == "lbp/4/final", 120)
            wait(driver, lambda d: image_loaded(d, "#face1 .overlay") and image_loaded(d, "#face2 .overlay"))
            final_src = driver.find_element(By.CSS_SELECTOR, "#face1 .overlay").get_attribute("src")
            assert final_src != partial_src and "v=" not in final_src
            assert driver.find_element(By.ID, "map-stage").text == ""
            assert not driver.find_element(By.ID, "cancel").is_displayed()
            assert not driver.find_element(By.ID, "progress").is_displayed() and not pending.is_displayed()
            assert httpx.get(f"{server.url}/api/pairs/{pair_id}/xmaps/lbp").json()["ready"]
            driver.save_screenshot(str(shots / "viewer-stream-final.png"))

            # Cancel: the work stops, the page says so and offers to start again, nothing is stored
            other = next(item["id"] for item in items if item["id"] != pair_id
                         and not httpx.get(f"{server.url}/api/pairs/{item['id']}/xmaps/lbp").json()["ready"])
            driver.get(f"{server.url}/viewer/{other}?model=lbp&method=4")
            viewer, pending = driver.find_element(By.ID, "viewer"), driver.find_element(By.ID, "pending")
            wait(driver, lambda d: pending.is_displayed())
            pending.find_element(By.CSS_SELECTOR, "button.compute").click()
            wait(driver, lambda d: PARTIAL.fullmatch(viewer.get_attribute("data-stage") or ""), 60)
            driver.find_element(By.ID, "cancel").click()
            wait(driver, lambda d: pending.is_displayed() and "Cancelled" in pending.text, 30)
            assert pending.find_element(By.CSS_SELECTOR, "button.compute").is_enabled()  # to start again
            assert not driver.find_element(By.ID, "progress").is_displayed()
            assert driver.find_element(By.ID, "map-stage").text == "" and viewer.get_attribute("data-shown") == ""
            state = httpx.get(f"{server.url}/api/pairs/{other}/xmaps/lbp").json()
            assert state["task"] is None and not state["ready"] and state["map_states"] == {}
            assert httpx.get(f"{server.url}/api/pairs/{other}/xmaps/lbp/4/1.png").status_code == 404
            driver.save_screenshot(str(shots / "viewer-cancelled.png"))
    finally:
        driver.quit()
