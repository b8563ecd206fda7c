"""Headless Chromium for the tests that look at the MLflow UI as a user does.

Debian's `chromium` and its `chromedriver` (packages `chromium`, `chromium-driver`; `.ci/run` installs them),
driven by Selenium. Both paths are given, so Selenium's driver manager never runs and nothing is downloaded.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing_browser() -> str:
    """Why the browser tests cannot run here, or "" when they can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} is missing: apt-get install chromium chromium-driver (.ci/run does)"
    if shutil.which("chromium") is None:
        return "chromium is not on PATH"
    return ""


@contextmanager
def headless_chromium(width: int = 1600, height: int = 900) -> Iterator[object]:
    """A Selenium WebDriver on a fresh, headless Chromium profile; quit when the block ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    # No sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(30)  # the UI renders from API calls: each lookup waits for its element
    try:
        yield driver
    finally:
        driver.quit()
