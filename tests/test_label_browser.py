"""A person's path through the labeling pages in a real browser (Debian's chromium, driven by
selenium, against a real uvicorn server): log in with the token, rate the steps of one solution with
the keyboard (1 correct, 2 neutral, 3 wrong: the steps after the first wrong one are disabled),
submit with Enter, and find the label in the database; then a pair with its keys. Skips with the
reason where chromium or chromedriver is missing.

Run: .venv/bin/pytest tests/test_label_browser.py -q
"""

from __future__ import annotations

import time

import pytest

from browser import MISSING_REASON, browser_available
from reasonlab.labeling.records import NewItem
from reasonlab.labeling.server import serving
from reasonlab.labeling.store import Store

pytestmark = pytest.mark.skipif(not browser_available(), reason=MISSING_REASON)


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the page")


def test_a_person_labels_steps_and_a_pair_with_the_keyboard(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    db = tmp_path / "labels.sqlite"
    store = Store(db)
    token = store.add_annotator("ann")
    steps = ["3 * 4 = 12", "12 + 5 = 18", "18 - 1 = 17", "answer: 17"]
    store.add_items(
        [
            NewItem("s", "steps", "Compute 3 * 4 + 5 - 1.", {"steps": steps}, "t", priority=1),
            NewItem("p", "pair", "Compute 2 + 2.", {"a": "2 + 2 = 4", "b": "2 + 2 = 5"}, "t"),
        ]
    )
    driver = browser.driver
    driver.delete_all_cookies()
    try:
        with serving(db) as url:
            driver.get(url + "/label")  # not logged in: sent to /login
            wait_for(lambda: driver.current_url.endswith("/login"))
            driver.find_element(By.ID, "token").send_keys(token, Keys.ENTER)
            wait_for(lambda: driver.current_url.endswith("/label"))
            assert "0 labelled, 2 left" not in driver.page_source  # progress counts one kind
            assert "0 labelled, 1 left" in driver.find_element(By.ID, "progress").text
            texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".step .text")]
            assert texts == steps
            keys = ActionChains(driver)
            keys.send_keys("1").send_keys("2").perform()  # step 1 correct, step 2 neutral
            ActionChains(driver).send_keys("3").perform()  # step 3 wrong: step 4 is disabled
            last = driver.find_elements(By.CSS_SELECTOR, "input[name=rating_3]")
            assert all(not x.is_enabled() for x in last)
            assert "disabled" in driver.find_element(By.ID, "step-3").get_attribute("class")
            comment = driver.find_element(By.NAME, "comment_1")
            comment.send_keys("12 + 5 is 17")  # typing digits in a comment rates nothing
            ActionChains(driver).send_keys(Keys.ESCAPE).send_keys(Keys.ENTER).perform()
            wait_for(lambda: "Nothing left" in driver.page_source)
            assert "1 labelled, 0 left" in driver.find_element(By.ID, "progress").text
            (label,) = store.all_labels()
            assert label["ratings"] == [1, 0, -1] and label["first_error"] == 2
            assert label["comments"] == {"1": "12 + 5 is 17"} and label["seconds"] > 0

            driver.get(url + "/pair")
            left = driver.find_element(By.CSS_SELECTOR, "#left pre").text
            # A (the left side) is better
            ActionChains(driver).send_keys("a").send_keys(Keys.ENTER).perform()
            wait_for(lambda: "No pair left" in driver.page_source)
            choice = store.all_labels()[-1]["choice"]
            assert choice == ("a" if left == "2 + 2 = 4" else "b")
            errors = [
                e["message"]
                for e in driver.get_log("browser")
                if e.get("level") in ("SEVERE", "ERROR")
            ]
            assert errors == []
    finally:
        driver.delete_all_cookies()
        store.close()
