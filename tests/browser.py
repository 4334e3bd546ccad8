"""Load an HTML report in a real headless browser (Debian's chromium, driven by selenium) and say what
went wrong: console errors, images that did not load, links to files that are not there.

Used by tests/test_report_browser.py through its `browser` fixture, which skips with the reason when
selenium, chromium or chromedriver is missing (`apt-get install chromium chromium-driver`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

MISSING_REASON = (
    "the browser check needs selenium (dev extra) and Debian's chromium and chromedriver on PATH "
    "(apt-get install chromium chromium-driver)"
)


def browser_available() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return shutil.which("chromium") is not None and shutil.which("chromedriver") is not None


@dataclass(frozen=True)
class PageCheck:
    title: str
    console_errors: list[str]
    broken_images: list[str]
    images: int
    text: str  # the page's visible text


class Browser:
    """One headless chromium session; `check(path)` loads a local HTML file and inspects it."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
            options.add_argument(arg)
        options.add_argument("--window-size=1280,900")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(shutil.which("chromedriver") or "chromedriver")
        self.driver = webdriver.Chrome(service=service, options=options)

    def check(self, path: Path) -> PageCheck:
        self.driver.get(Path(path).resolve().as_uri())
        self.driver.get_log("browser")  # drop anything logged before this page
        self.driver.refresh()
        images = self.driver.execute_script(
            "return Array.from(document.images).map(i => [i.src.slice(0, 80), "
            "i.complete && i.naturalWidth > 0])"
        )
        errors = [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry.get("level") in ("SEVERE", "ERROR")
        ]
        return PageCheck(
            title=self.driver.title,
            console_errors=errors,
            broken_images=[src for src, ok in images if not ok],
            images=len(images),
            text=self.driver.find_element("tag name", "body").text,
        )

    def screenshot(self, path: Path, width: int = 1280, height: int = 900) -> None:
        self.driver.set_window_size(width, height)
        self.driver.save_screenshot(str(path))

    def close(self) -> None:
        self.driver.quit()
