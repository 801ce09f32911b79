"""What the tests need to know about the Home Assistant version they run on (feature-detected).

CI runs the suite on the current release and on the minimum we support (scripts/ha-versions).
"""

from __future__ import annotations

import inspect
from typing import Any

from homeassistant.components import conversation, tts
from homeassistant.config_entries import ConfigEntries
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import chat_session

# HA 2026.11: config entry methods return None (raising on failure); a core-namespaced
# integration (our tests' mock ``test`` domain) that returns a bool fails its setup.
ENTRY_METHODS_RETURN_NONE = hasattr(ConfigEntries, "async_unload_platforms_or_raise")


def entry_method_result() -> bool | None:
    """What a mock integration's async_setup_entry/async_unload_entry returns on success."""
    return None if ENTRY_METHODS_RETURN_NONE else True


def chat_session_kwargs(context: Context | None = None) -> dict[str, Any]:
    """Keyword arguments for ``async_get_chat_session`` (HA 2026.11 wants ``context=``)."""
    if "context" in inspect.signature(chat_session.async_get_chat_session).parameters:
        return {"context": context}
    return {}


def chat_content(hass: HomeAssistant, conversation_id: str) -> list[Any]:
    """The chat log of a conversation, as HA keeps it."""
    with (
        chat_session.async_get_chat_session(
            hass, conversation_id, **chat_session_kwargs()
        ) as session,
        conversation.async_get_chat_log(hass, session) as chat_log,
    ):
        return list(chat_log.content)


# HA 2026.11: streaming URLs for audio that no TTS engine made (our later replies, announce).
HAS_AUDIO_STREAMS = hasattr(tts, "async_create_audio_stream")
