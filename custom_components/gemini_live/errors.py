"""Translated errors shared by the agent's turns and the actions."""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .live.errors import AuthenticationError, LiveError, SessionClosedError, TurnEndedError

_WITH_REASON = frozenset({"turn_output_blocked", "turn_input_blocked", "turn_ended"})


def turn_end_key(reason: str) -> str:
    """The translation key for a turnCompleteReason that ends a turn abnormally."""
    if reason == "MALFORMED_FUNCTION_CALL":
        return "turn_malformed_call"
    if reason == "RESPONSE_REJECTED":
        return "turn_rejected"
    if reason == "MAX_REGENERATION_REACHED":
        return "turn_regeneration_limit"
    if reason.startswith(("GENERATED_", "OUTPUT_")):
        return "turn_output_blocked"
    if reason.startswith(("INPUT_", "PROHIBITED_", "IMAGE_PROHIBITED_", "UNSAFE_PROMPT")) or (
        reason == "BLOCKLIST"
    ):
        return "turn_input_blocked"
    return "turn_ended"


def session_error(err: LiveError) -> HomeAssistantError:
    """The translated error for a Live session that could not serve a turn or an action."""
    if isinstance(err, TurnEndedError):
        key = turn_end_key(err.reason)
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders={"reason": err.reason} if key in _WITH_REASON else None,
        )
    if isinstance(err, SessionClosedError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="session_closed")
    if isinstance(err, AuthenticationError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth")
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="session_error",
        translation_placeholders={"error": str(err)},
    )
