"""Protocol-layer tests need no Home Assistant: neutralise the hass-based autouse fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No HA here."""


@pytest.fixture(autouse=True)
def setup_homeassistant() -> None:
    """No HA here."""
