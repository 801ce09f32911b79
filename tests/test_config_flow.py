"""Config flow tests (against the emulator)."""

from __future__ import annotations

from homeassistant import config_entries
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import CONF_ENDPOINT, DOMAIN, SUBENTRY_AGENT
from live_emulator import Fault, LiveEmulator

from .conftest import TEST_API_KEY


async def test_user_flow_creates_entry(hass: HomeAssistant, emulator: LiveEmulator) -> None:
    """The user step validates the key with a live session and creates an entry + agent."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: f"  {TEST_API_KEY} ", CONF_ENDPOINT: emulator.http_url}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: emulator.http_url}
    entry = result["result"]
    assert [s.subentry_type for s in entry.subentries.values()] == [SUBENTRY_AGENT]
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert emulator.connections[0].setup is not None


@pytest.mark.parametrize(
    ("fault", "key", "error"),
    [
        (None, "wrong-key", "invalid_auth"),
        (
            Fault(
                "close",
                after_server_messages=0,
                code=1008,
                reason="models/x is not found for API version v1beta",
            ),
            None,
            "model_not_found",
        ),
        (
            Fault(
                "close",
                after_server_messages=0,
                code=1011,
                reason="You exceeded your current quota.",
            ),
            None,
            "quota_exceeded",
        ),
        (
            Fault(
                "close",
                after_server_messages=0,
                code=1007,
                reason="Request contains an invalid argument.",
            ),
            None,
            "unknown",
        ),
    ],
)
async def test_user_flow_errors(
    hass: HomeAssistant, emulator: LiveEmulator, fault: Fault | None, key: str | None, error: str
) -> None:
    """Each server answer maps to a clear form error; fixing it then succeeds."""
    if fault is not None:
        emulator.inject(fault)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: key or TEST_API_KEY, CONF_ENDPOINT: emulator.http_url}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: emulator.http_url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_no_network(hass: HomeAssistant, socket_enabled: None) -> None:
    """Nothing listening at the endpoint -> cannot_connect."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: "http://127.0.0.1:9"}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_same_key_aborts(hass: HomeAssistant, setup_integration: MockConfigEntry) -> None:
    """A second entry with the same API key is refused."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: setup_integration.data[CONF_ENDPOINT]},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Reauth replaces the key after validating it."""
    emulator.config.api_keys = frozenset({TEST_API_KEY, "new-key"})
    result = await setup_integration.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "wrong", CONF_ENDPOINT: emulator.http_url}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "new-key", CONF_ENDPOINT: emulator.http_url}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert setup_integration.data[CONF_API_KEY] == "new-key"


async def test_reconfigure(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Reconfigure changes the endpoint/key after validating them."""
    result = await setup_integration.start_reconfigure_flow(hass)
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: emulator.http_url + "/"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert setup_integration.data[CONF_ENDPOINT] == emulator.http_url


@pytest.mark.parametrize(
    "endpoint",
    [
        "127.0.0.1:8765",  # no scheme
        "localhost",
        "ftp://127.0.0.1:8765",
        "http://",  # no host
        "http://:8765",
        "http://127.0.0.1:99999",  # port out of range
        "http://127.0.0.1:0",
        "http://127.0.0.1:87a5",  # not a number
        "http://127.0.0.1:8765?key=x",  # would be dropped
        "http://127.0.0.1:8765#x",
        "http://127.0.0 .1:8765",
    ],
)
async def test_bad_endpoint_is_a_form_error(
    hass: HomeAssistant, emulator: LiveEmulator, endpoint: str
) -> None:
    """A malformed endpoint: "invalid endpoint URL" on the field, nothing is opened."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: endpoint}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_ENDPOINT: "invalid_endpoint"}
    assert not emulator.connections
    # Corrected: the entry is created.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: emulator.http_url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_endpoint_schemes(hass: HomeAssistant, emulator: LiveEmulator, scheme: str) -> None:
    """ws:// (and wss://, https://) work as well as http://."""
    endpoint = emulator.http_url.replace("http", scheme, 1)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: endpoint}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ENDPOINT] == endpoint
    await hass.async_block_till_done()


async def test_bad_endpoint_on_reconfigure(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Reconfigure validates the endpoint the same way (and offers no assistant)."""
    result = await setup_integration.start_reconfigure_flow(hass)
    assert "create_assistant" not in {str(k) for k in result["data_schema"].schema}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: "127.0.0.1:8765"}
    )
    assert result["errors"] == {CONF_ENDPOINT: "invalid_endpoint"}
