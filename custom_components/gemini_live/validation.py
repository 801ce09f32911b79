"""Credential validation: open a real Live session and close it again."""

from __future__ import annotations

import ssl

from homeassistant.core import HomeAssistant
from homeassistant.util.ssl import get_default_context

from .live.driver import check_connection
from .live.endpoint import DEFAULT_BASE_URL, Endpoint
from .live.messages import SetupConfig
from .live.models import DEFAULT_MODEL


def make_endpoint(api_key: str, endpoint: str | None) -> Endpoint:
    """The Endpoint for a config entry's key and optional base URL (InvalidEndpointError)."""
    return Endpoint(api_key=api_key, base_url=endpoint or DEFAULT_BASE_URL)


def ssl_context() -> ssl.SSLContext:
    """HA's preloaded client SSL context: using it loads nothing from disk in the event loop."""
    return get_default_context()


async def async_validate_credentials(
    hass: HomeAssistant, api_key: str, endpoint: str | None, model: str = DEFAULT_MODEL
) -> None:
    """Raise a LiveError subclass if a Live session cannot be set up with these credentials."""
    await check_connection(
        make_endpoint(api_key, endpoint),
        SetupConfig(model=model, session_resumption=False),
        ssl_context=ssl_context(),
    )
