"""Translated errors shared by the agent's turns and the actions."""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .live.errors import AuthenticationError, LiveError, SessionClosedError


def session_error(err: LiveError) -> HomeAssistantError:
    """The translated error for a Live session that could not serve a turn or an action."""
    if isinstance(err, SessionClosedError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="session_closed")
    if isinstance(err, AuthenticationError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth")
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="session_error",
        translation_placeholders={"error": str(err)},
    )
