"""Translated errors shared by the agent's turns and the actions."""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .live.connection import LiveError


def session_error(err: LiveError) -> HomeAssistantError:
    """The translated error for a failed Live session (turns and actions)."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="session_error",
        translation_placeholders={"error": str(err)},
    )
