"""A new user's first ten minutes, in a real Chromium against the served demo.

Log in, add an agent through the UI (the demo already added the Gemini Live entry and its first
agent), check the assistant that came with it, open Assist on that assistant, type "turn on the
kitchen light", see the reply and the light on. Screenshots are saved in demo-output/browser/.

Selenium is blocking, so the browser runs in a worker thread: HA's blocking-call detector (on in
these tests) watches the event loop's thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import time

import pytest
from selenium.webdriver.common.keys import Keys

from .conftest import Demo
from .helpers import Browser

AGENT = "Kitchen"
LIGHT = "light.kitchen_light"
UTTERANCE = "turn on the kitchen light"
GREETING = "How can I assist?"


def log_in(browser: Browser, demo: Demo) -> None:
    """The login page, with the credentials the demo printed."""
    browser.driver.get(demo.url)
    browser.element("input[name=username]").send_keys(demo.username)
    browser.element("input[name=password]").send_keys(demo.password)
    browser.click("ha-button", "Log in")
    browser.wait_for(lambda: browser.find("ha-sidebar"), "the sidebar after logging in")


def add_agent(browser: Browser, demo: Demo) -> None:
    """Settings > Devices & services > Gemini Live > Add agent, with the assistant ticked."""
    browser.driver.get(f"{demo.url}/config/integrations/integration/gemini_live")
    browser.element("ha-button", "Add agent")
    browser.screenshot("01-gemini-live-entry")
    browser.click("ha-button", "Add agent")
    name = browser.element("input[name=name]")
    default = str(name.get_attribute("value"))
    assert default == "Gemini Live 2"  # the next free default name
    name.send_keys(Keys.END, Keys.BACKSPACE * len(default), AGENT)
    switch = browser.element("ha-switch", "Create an assistant", contains=True)
    assert browser.driver.execute_script("return arguments[0].checked", switch), (
        "the assistant must be offered, ticked"
    )
    browser.screenshot("02-add-agent")
    browser.click("ha-button", "Submit")
    browser.element("ha-dialog", "Live settings for", contains=True)
    browser.screenshot("03-live-settings")
    browser.click("ha-button", "Submit")
    browser.element("p", f"Created configuration for {AGENT}.")
    browser.screenshot("04-agent-created")
    browser.click("ha-button", "Finish")


def check_assistant(browser: Browser, demo: Demo) -> None:
    """Settings > Voice assistants lists the new assistant, made of the new agent's engines."""
    browser.driver.get(f"{demo.url}/config/voice-assistants/assistants")
    row = browser.element("ha-list-item-button", AGENT, contains=True)
    browser.screenshot("05-assistants")
    # The assistant's engines, as the UI has them: all three belong to the agent's device.
    engines = browser.hass(
        """
        const name = arguments[0];
        return (async () => {
          const {pipelines} = await hass.callWS({type: 'assist_pipeline/pipeline/list'});
          const p = pipelines.find((p) => p.name === name);
          if (!p) return null;
          const ids = [p.stt_engine, p.conversation_engine, p.tts_engine];
          const device = (id) => hass.devices[hass.entities[id]?.device_id]?.name;
          return {ids, devices: ids.map(device), language: p.language};
        })();
        """,
        AGENT,
    )
    assert engines is not None, f"no assistant named {AGENT}"
    assert engines["devices"] == [AGENT, AGENT, AGENT], engines
    assert engines["language"] == "en"
    row.click()  # its settings, as the UI shows them
    browser.element_with_text("Conversation agent")
    browser.screenshot("06-assistant-agent")
    speech = browser.element_with_text("Speech-to-text")
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", speech)
    browser.element_with_text(f"{AGENT} Voice")  # the agent's TTS entity, named by HA
    browser.screenshot("07-assistant-voice")
    browser.click("ha-button", "Cancel")
    browser.wait_for(lambda: not browser.find("ha-dialog"), "the assistant dialog to close")


def ask_assist(browser: Browser, demo: Demo) -> str:
    """Assist on the new assistant: type the request, see the reply and the light on."""
    browser.driver.get(demo.url)
    browser.wait_for(lambda: browser.find("ha-sidebar"), "the overview")
    # The demo's own voice run turned the light on: switch it off first (as a user would).
    browser.hass("hass.callService('light', 'turn_off', {entity_id: arguments[0]});", LIGHT)
    browser.wait_for(lambda: browser.state(LIGHT) == "off", "the light to be off")

    browser.click("button[aria-label^='Assist']")  # the toolbar's Assist button
    browser.element("ha-assist-chat")
    browser.click("ha-dropdown > ha-button")  # the assistant picker
    browser.click("ha-dropdown-item", AGENT)
    browser.wait_for(
        lambda: browser.find("ha-dropdown > ha-button", AGENT), f"the assistant {AGENT}"
    )
    browser.element("input", inside="ha-assist-chat").send_keys(UTTERANCE, Keys.ENTER)

    def reply() -> str | None:
        """The assistant's answer to the request, once complete (no "…" any more)."""
        chat = [
            (str(message.get_attribute("class")), message)
            for message in browser.find("div.message", inside="ha-assist-chat")
        ]
        asked = [
            i
            for i, (cls, message) in enumerate(chat)
            if "user" in cls and UTTERANCE in browser.deep_text(message)
        ]
        for cls, message in chat[asked[0] + 1 :] if asked else ():
            texts = [
                text
                for markdown in browser.driver.execute_script(
                    "return [...arguments[0].querySelectorAll(':scope > ha-markdown')]", message
                )
                for text in browser.deep_text(markdown)
            ]
            answer = " ".join(texts)
            if "hass" in cls and answer and not answer.endswith("…"):
                return answer
        return None

    answer = browser.wait_for(reply, "Gemini's reply in the Assist dialog")
    browser.wait_for(lambda: browser.state(LIGHT) == "on", "the light to turn on")
    browser.screenshot("08-assist-reply")
    browser.click("*", "Show details", inside="ha-assist-chat")  # the tool call and its result
    browser.element_with_text("intent__HassTurnOn")
    browser.screenshot("09-assist-details")
    browser.driver.find_element("tag name", "body").send_keys(Keys.ESCAPE)
    browser.hass(
        "document.querySelector('home-assistant').dispatchEvent(new CustomEvent("
        "'hass-more-info', {detail: {entityId: arguments[0]}, bubbles: true, composed: true}));",
        LIGHT,
    )
    browser.element("ha-more-info-dialog")
    browser.screenshot("10-light-on")
    return answer


def first_ten_minutes(chromium: tuple[str, str], artifacts: Path, demo: Demo) -> dict[str, float]:
    """The whole walk; returns each step's duration (seconds)."""
    browser = Browser(*chromium, artifacts=artifacts, wait=60)
    timings: dict[str, float] = {}
    step = "start"
    try:
        for step, action in (
            ("log in", log_in),
            ("add an agent", add_agent),
            ("check its assistant", check_assistant),
            ("ask Assist", ask_assist),
        ):
            started = time.perf_counter()
            action(browser, demo)
            timings[step] = time.perf_counter() - started
    except Exception:
        browser.screenshot(f"failed-{step.replace(' ', '-')}")
        raise
    finally:
        browser.close()
    return timings


@pytest.mark.timeout(300)
async def test_first_ten_minutes(
    demo: Demo,
    chromium: tuple[str, str],
    artifacts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Log in, add an agent with its assistant, and use that assistant in Assist."""
    with capsys.disabled():
        print(f"\nbrowser test screenshots: {artifacts}")
    started = time.perf_counter()
    timings = await asyncio.to_thread(first_ten_minutes, chromium, artifacts, demo)
    with capsys.disabled():
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
        print(f"browser test: {steps}; total {time.perf_counter() - started:.1f} s")
    screenshots = await asyncio.to_thread(lambda: sorted(p.name for p in artifacts.glob("*.png")))
    assert screenshots == [
        "01-gemini-live-entry.png",
        "02-add-agent.png",
        "03-live-settings.png",
        "04-agent-created.png",
        "05-assistants.png",
        "06-assistant-agent.png",
        "07-assistant-voice.png",
        "08-assist-reply.png",
        "09-assist-details.png",
        "10-light-on.png",
    ]
