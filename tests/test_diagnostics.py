"""Config entry diagnostics: useful, and free of secrets."""

from __future__ import annotations

import json

from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.gemini_live.const import CONF_ENDPOINT
from custom_components.gemini_live.live.models import DEFAULT_MODEL
from live_emulator import LiveEmulator

from .conftest import TEST_API_KEY, agent_data, wait_for

AGENT = "conversation.gemini_live"


async def test_diagnostics_after_a_turn(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """After a real turn (handle stored) and a minted token, nothing secret leaks."""
    entry = setup_integration
    # Register the diagnostics views before a client freezes the HTTP router.
    assert await async_setup_component(hass, "diagnostics", {})
    result = await conversation.async_converse(
        hass, "hello", None, Context(), agent_id=AGENT, language="en"
    )
    assert result.response.speech["plain"]["speech"]
    store = entry.runtime_data.store
    await wait_for(lambda: store.count() >= 1)
    # An ephemeral token exists too (minted through our websocket command).
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "gemini_live/ephemeral_token", "agent_id": AGENT})
    msg = await client.receive_json()
    assert msg["success"], msg
    token = msg["result"]["token"]

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    dump = json.dumps(diagnostics)
    handles = set(emulator.handles) | {h for rec in emulator.connections for h in rec.handles}
    assert handles, "the emulator issued resumption handles"
    assert TEST_API_KEY not in dump
    assert "auth_tokens/" not in dump
    assert token not in dump
    for handle in handles:
        assert handle not in dump

    assert diagnostics["data"] == {"api_key": "**REDACTED**", CONF_ENDPOINT: emulator.http_url}
    assert diagnostics["state"] == "loaded"
    [agent] = diagnostics["subentries"].values()
    assert agent["title"] == "Gemini Live"
    assert agent["data"]["model"] == DEFAULT_MODEL
    caps = agent["model_capabilities"]
    assert caps["id"] == DEFAULT_MODEL
    assert caps["known"] is True
    assert caps["modalities"] == ["AUDIO"]
    runtime = agent["runtime"]
    assert runtime["open_sessions"] == 1
    assert runtime["connected_sessions"] == 1
    assert runtime["reconnects"] == 0
    assert runtime["stored_handles"] == 1
    assert runtime["sessions"][0]["kind"] == "text"
    assert runtime["sessions"][0]["connected"] is True


async def test_diagnostics_of_unloaded_entry(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """An unloaded entry still reports its configuration (no runtime)."""
    entry = setup_integration
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert TEST_API_KEY not in json.dumps(diagnostics)
    [agent] = diagnostics["subentries"].values()
    assert "runtime" not in agent
    assert agent["model_capabilities"]["id"] == DEFAULT_MODEL


@pytest.mark.parametrize("agent_options", [agent_data(model="gemini-live-2.5-flash-preview")])
async def test_diagnostics_with_unknown_model(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """An agent on a model missing from our table is reported as such."""
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_integration)
    [agent] = diagnostics["subentries"].values()
    assert agent["model_capabilities"] == {"id": "gemini-live-2.5-flash-preview", "known": False}
    assert agent["runtime"]["open_sessions"] == 0


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("", ""),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("https://me:secret@proxy.lan:8443/gemini", "https://**REDACTED**@proxy.lan:8443/gemini"),
        ("https://proxy.lan/g?key=secret", "https://proxy.lan/g?**REDACTED**"),
    ],
)
def test_endpoint_credentials_are_redacted(endpoint: str, shown: str) -> None:
    """A proxy URL with credentials in it is shown without them."""
    from custom_components.gemini_live.diagnostics import _endpoint

    assert _endpoint(endpoint) == shown
