"""Credential validation: open a real Live session and close it again."""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from .live.connection import DEFAULT_BASE_URL, Endpoint, LiveConnection
from .live.messages import SetupConfig, build_setup
from .live.models import DEFAULT_MODEL


def make_endpoint(api_key: str, endpoint: str | None) -> Endpoint:
    """The Endpoint for a config entry's key and optional base URL."""
    return Endpoint(api_key=api_key, base_url=endpoint or DEFAULT_BASE_URL)


async def async_validate_credentials(
    hass: HomeAssistant, api_key: str, endpoint: str | None, model: str = DEFAULT_MODEL
) -> None:
    """Raise a LiveError subclass if a Live session cannot be set up with these credentials."""
    setup = build_setup(SetupConfig(model=model, session_resumption=False))
    conn = await LiveConnection.open(make_endpoint(api_key, endpoint), setup, setup_timeout=10)
    await conn.close()
