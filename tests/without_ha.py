"""Autouse fixtures for tests that need no Home Assistant (protocol, emulator, load generator).

A conftest imports them to override the top-level autouse fixtures that set up HA.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the top-level autouse fixture: these tests need no Home Assistant."""


@pytest.fixture(autouse=True)
def setup_homeassistant() -> None:
    """Override the top-level autouse fixture: these tests need no Home Assistant."""


@pytest.fixture(autouse=True)
def _sockets(socket_enabled: None) -> None:
    """Allow real sockets on 127.0.0.1 (the emulator, the load generator)."""
