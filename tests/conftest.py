"""Shared fixtures for the Gemini Live tests."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Import our component before phcc mounts its testing_config, so ours is the
# `custom_components` package HA finds (see ha-internals.md, "phcc testing").
import custom_components.gemini_live  # noqa: F401
from custom_components.gemini_live.const import CONF_ENDPOINT, DOMAIN

TEST_API_KEY = "AIzaTESTKEY-0123456789abcdefghijklmnopq"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: Any) -> None:
    """Enable loading custom integrations in every test."""


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """A config entry for our integration (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Gemini Live",
        data={CONF_API_KEY: TEST_API_KEY, CONF_ENDPOINT: ""},
        version=2,
        minor_version=1,
    )


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up the `homeassistant` core integration (conversation depends on it)."""
    assert await async_setup_component(hass, "homeassistant", {})
