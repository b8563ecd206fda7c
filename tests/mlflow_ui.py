"""What a user does in the MLflow 3.17 UI, step by step, for the browser test: each step waits for what the
user would see and fails with what the page showed instead.

The UI is a React app under `#/`: pages render from API calls, charts only once scrolled into view, so a step
looks elements up by their visible text (waiting for them) rather than reading the page once.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

from selenium.common.exceptions import NoSuchElementException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys


class MlflowUI:
    def __init__(self, driver, uri: str, screenshots: Path):
        self.driver, self.uri, self.screenshots = driver, uri, screenshots
        screenshots.mkdir(parents=True, exist_ok=True)

    # --- looking ------------------------------------------------------------------------------------

    def open(self, route: str) -> None:
        self.driver.get(f"{self.uri}/#/{route}")

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def find_text(self, text: str, exact: bool = False):
        """The first element showing `text`, waiting for it; AssertionError with the page's text if none."""
        # Any of an element's text nodes: React splits "@ best-baseline" into "@ " and "best-baseline".
        xpath = f"//*[text()[. = {_quote(text)}]]" if exact else f"//*[text()[contains(., {_quote(text)})]]"
        try:
            return self.driver.find_element(By.XPATH, xpath)
        except (NoSuchElementException, TimeoutException):
            raise AssertionError(f"{text!r} is not shown on {self.driver.current_url}; the page shows:\n"
                                 f"{self.text()[:3000]}") from None

    def wait_until(self, condition, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not so after {seconds:.0f} s on {self.driver.current_url}; the page shows:\n"
                                     f"{self.text()[:3000]}")
            time.sleep(0.5)

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    # --- doing --------------------------------------------------------------------------------------

    def close_assistant(self) -> None:
        """Close the MLflow Assistant panel that opens by itself on a first visit: it covers a third of the page."""
        buttons = self.driver.find_elements(By.CSS_SELECTOR, "button[data-component-id$='chat_panel.close']")
        if buttons:
            buttons[0].click()

    def choose_model_training(self) -> None:
        """The sidebar's switch from the GenAI view (MLflow 3.17's default) to model training."""
        self.find_text("Model training", exact=True).click()

    def expand_run(self, name: str) -> None:
        """Click the + before a parent run's name, which shows its children in the runs table."""
        self.driver.find_element(
            By.XPATH, f"//a[.//*[text()={_quote(name)}]]/ancestor::*[contains(@class, 'ag-cell-value')][1]"
                      "//button[contains(@data-component-id, 'runnamecellrenderer')]").click()

    def show_tag_columns(self, *tags: str) -> None:
        """Columns menu -> Tags -> tick each tag, as a user adds columns to the runs table."""
        self.find_text("Columns", exact=True).click()
        for tag in tags:
            item = self.driver.find_element(By.XPATH, f"//span[contains(@class, 'tree-title') and text()={_quote(tag)}]")
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", item)  # a long list
            item.click()
        self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)

    def search_charts(self, text: str) -> None:
        box = self.driver.find_element(By.XPATH, "//input[@placeholder='Search metric charts']")
        box.send_keys(Keys.CONTROL, "a")  # clear() leaves a React input's value as it was
        box.send_keys(Keys.DELETE)
        box.send_keys(text)

    def slide_images_to_step(self, step: int) -> None:
        """The image chart opens at its first step when it has several; a user slides it to another."""
        box = self.driver.find_element(By.CSS_SELECTOR, "input[type='number'][min]")
        if box.is_enabled():  # with images at one step only there is nothing to slide
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(str(step), Keys.ENTER)

    def artifact_images(self) -> list[str]:
        """Paths of the run's artifacts the page has drawn as images (not its icons), after scrolling each image
        into view: the chart loads an image when it comes into sight. MLflow 3.18 fetches an artifact and shows
        it from a `blob:` URL that names nothing, so the paths come from the page's own requests, counted once
        an image from the run (a `blob:` or artifact URL) has been drawn."""
        images = self.driver.find_elements(By.TAG_NAME, "img")
        for image in images:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
        from_run = [img for img in images if (img.get_attribute("src") or "").startswith("blob:")
                    or "artifact" in (img.get_attribute("src") or "")]
        if not any(self.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
                   for img in from_run):
            return []
        requested = self.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        return [urllib.parse.unquote(url) for url in requested + [img.get_attribute("src") for img in from_run]
                if "artifact" in url]


def compare_route(run_ids: list[str], experiment_id: str) -> str:
    query = urllib.parse.urlencode({"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])})
    return f"compare-runs?{query}"


def _quote(text: str) -> str:
    """`text` as an XPath string literal."""
    return f'"{text}"' if '"' not in text else f"'{text}'"
