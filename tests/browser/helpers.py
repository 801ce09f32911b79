"""Selenium helpers for Home Assistant's frontend (web components in nested shadow roots).

Selenium's CSS locators stop at shadow roots; :meth:`Browser.find` runs a selector in the
document and in every shadow root (a JS walk), optionally keeping only visible elements with a
given text. Every wait polls a condition (bounded), never sleeps for luck.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

# Chromium on a closed network: no sandbox (containers), no GPU, nothing fetched in the background.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--lang=en-US",
)

_DEEP = """
const deepAll = (selector, roots) => {
  const found = [];
  const walk = (root) => {
    found.push(...root.querySelectorAll(selector));
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  for (const root of roots) {
    walk(root);
    if (root.shadowRoot) walk(root.shadowRoot);
  }
  return found;
};
const textOf = (el) => (el.innerText || el.textContent || '').trim();
const [selector, text, contains, inside] = arguments;
const roots = inside === null ? [document] : deepAll(inside, [document]);
return deepAll(selector, roots).filter((el) =>
  el.checkVisibility() &&
  (text === null || (contains ? textOf(el).includes(text) : textOf(el) === text)));
"""


_DEEP_TEXT = """
const [text, contains] = arguments;
const found = [];
const walk = (root) => {
  for (const el of root.querySelectorAll('*')) {
    const own = [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent).join('').trim();
    if (own && (contains ? own.includes(text) : own === text) && el.checkVisibility()) {
      found.push(el);
    }
    if (el.shadowRoot) walk(el.shadowRoot);
  }
};
walk(document);
return found;
"""


_DEEP_TEXTS = """
const texts = [];
const walk = (node) => {
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      const text = child.textContent.trim();
      if (text && child.parentElement?.checkVisibility()) texts.push(text);
    } else if (child.nodeType === Node.ELEMENT_NODE) {
      if (child.shadowRoot) walk(child.shadowRoot);
      walk(child);
    }
  }
};
walk(arguments[0].shadowRoot || arguments[0]);
return texts;
"""


_HIT_IS_INSIDE = """
const el = arguments[0];
const box = el.getBoundingClientRect();
const x = box.left + box.width / 2, y = box.top + box.height / 2;
let hit = document.elementFromPoint(x, y);
while (hit && hit.shadowRoot) {
  const inner = hit.shadowRoot.elementFromPoint(x, y);
  if (!inner || inner === hit) break;
  hit = inner;
}
// Up the composed tree: slotted content goes to its slot, a shadow root to its host.
for (let node = hit; node; node = node.assignedSlot || node.parentNode || node.host) {
  if (node === el) return true;
}
return false;
"""


def chromium_paths() -> tuple[str, str] | None:
    """Debian's chromium and chromedriver, if installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


class Browser:
    """A headless Chromium with a fresh profile; screenshots go to ``artifacts``."""

    def __init__(self, chromium: str, chromedriver: str, artifacts: Path, wait: float) -> None:
        """Start Chromium (its profile is a new temporary directory)."""
        self.artifacts = artifacts
        self.timeout = wait
        self._profile = tempfile.mkdtemp(prefix="gemini-live-chromium-")
        options = Options()
        options.binary_location = chromium
        for arg in (*CHROMIUM_ARGS, f"--user-data-dir={self._profile}"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(chromedriver), options=options)

    def close(self) -> None:
        """Stop Chromium and delete its profile."""
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)

    def find(
        self,
        selector: str,
        text: str | None = None,
        *,
        contains: bool = False,
        inside: str | None = None,
    ) -> list[Any]:
        """Visible elements matching ``selector`` in the page and all its shadow roots.

        With ``text``: only those whose text is ``text`` (or contains it). With ``inside``: only
        below the elements matching that selector (found the same way).
        """
        found: list[Any] = self.driver.execute_script(_DEEP, selector, text, contains, inside)
        return found

    def find_text(self, text: str, *, contains: bool = False) -> list[Any]:
        """Visible elements whose own text is ``text`` (or contains it), shadow roots included."""
        found: list[Any] = self.driver.execute_script(_DEEP_TEXT, text, contains)
        return found

    def element_with_text(self, text: str, *, contains: bool = False) -> WebElement:
        """Wait for a visible element showing ``text`` (see :meth:`find_text`)."""
        found = self.wait_for(lambda: self.find_text(text, contains=contains), repr(text))
        element: WebElement = found[0]
        return element

    def wait_for[T](self, condition: Callable[[], T], what: str, within: float | None = None) -> T:
        """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
        return WebDriverWait(
            self.driver, within or self.timeout, poll_frequency=0.2, ignored_exceptions=()
        ).until(lambda _driver: condition(), f"timed out waiting for {what}")

    def element(
        self,
        selector: str,
        text: str | None = None,
        *,
        contains: bool = False,
        inside: str | None = None,
    ) -> WebElement:
        """Wait for a visible element (see :meth:`find`) and return the first one."""
        found = self.wait_for(
            lambda: self.find(selector, text, contains=contains, inside=inside),
            f"{selector} {text!r}" if text else selector,
        )
        element: WebElement = found[0]
        return element

    def click(
        self,
        selector: str,
        text: str | None = None,
        *,
        contains: bool = False,
        inside: str | None = None,
    ) -> None:
        """Wait for a visible element and click it (a real click at its position)."""
        element = self.element(selector, text, contains=contains, inside=inside)
        try:
            element.click()
        except ElementClickInterceptedException:
            # Selenium's check does not see through shadow roots: the topmost element at the
            # click point may be the target's own slotted content (an icon in a button).
            if not self.driver.execute_script(_HIT_IS_INSIDE, element):
                raise
            ActionChains(self.driver).move_to_element(element).click().perform()

    def deep_text(self, element: WebElement) -> list[str]:
        """The texts shown in ``element`` and in the shadow roots below it, in order."""
        texts: list[str] = self.driver.execute_script(_DEEP_TEXTS, element)
        return texts

    def hass(self, script: str, *args: Any) -> Any:
        """Run ``script`` with ``hass`` = the frontend's connection object (its live state)."""
        return self.driver.execute_script(
            "const hass = document.querySelector('home-assistant').hass;\n" + script, *args
        )

    def state(self, entity_id: str) -> str | None:
        """The entity's state as the frontend has it (pushed by HA over the websocket)."""
        state: str | None = self.hass(
            "const s = hass.states[arguments[0]]; return s ? s.state : null;", entity_id
        )
        return state

    def screenshot(self, name: str) -> Path:
        """Save a PNG of the page as an artefact."""
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(os.fspath(path))
        return path
