"""Diagnostics: configuration, model capabilities and the state of the Live sessions.

Never included: the API key (redacted), ephemeral tokens, resumption handles (only their count)
and conversation ids.
"""

from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from . import GeminiLiveConfigEntry
from .const import CONF_ENDPOINT, CONF_MODEL, DOMAIN, SUBENTRY_AGENT
from .live.models import DEFAULT_MODEL, ModelCapabilities, UnknownModelError, get_model

TO_REDACT: Final = {
    CONF_API_KEY,
    "apiKey",
    "key",
    "token",
    "access_token",
    "auth_token",
    "handle",
    "handles",
    "resumption_handle",
    "new_handle",
    "newHandle",
}


def _plain(value: Any) -> Any:
    """JSON-friendly copy of asdict() output: enums to their values, sets to sorted lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _endpoint(url: str) -> str:
    """The endpoint without credentials a proxy URL might carry (user:password@, ?key=)."""
    parts = urlsplit(url)
    if not (parts.username or parts.password or parts.query):
        return url
    host = parts.hostname or ""
    netloc = f"{REDACTED}@{host}" if parts.username or parts.password else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, REDACTED if parts.query else "", ""))


def _capabilities(model: str) -> dict[str, Any]:
    try:
        caps: ModelCapabilities = get_model(model)
    except UnknownModelError:
        return {"id": model, "known": False}
    return {"known": True, **_plain(asdict(caps)), "supports_text": caps.supports_text}


def _runtime(entry: GeminiLiveConfigEntry, subentry_id: str) -> dict[str, Any]:
    data = entry.runtime_data
    runtime: dict[str, Any] = {"stored_handles": data.store.count(f"{subentry_id}:")}
    if (agent := data.agents.get(subentry_id)) is None:
        return runtime
    conversations = agent.conversations.all()
    sessions = [
        {
            "kind": conversation.key.partition(":")[0],
            "connected": conversation.client.protocol.active_gen is not None,
            "closed": conversation.closed,
            "reconnects": conversation.client.protocol.reconnects,
            "unacknowledged_messages": conversation.client.protocol.unacknowledged,
            "model": conversation.client.protocol.caps.id,
            "session_id": conversation.client.protocol.session_id,
        }
        for conversation in conversations
    ]
    runtime.update(
        {
            "open_sessions": sum(1 for s in sessions if not s["closed"]),
            "connected_sessions": sum(1 for s in sessions if s["connected"]),
            "reconnects": sum(c.client.protocol.reconnects for c in conversations),
            "sessions": sessions,
        }
    )
    return runtime


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: GeminiLiveConfigEntry
) -> dict[str, Any]:
    """Diagnostics of one config entry (one API key and its agents)."""
    loaded = entry.state is ConfigEntryState.LOADED
    agents: dict[str, Any] = {}
    for subentry in entry.subentries.values():
        item: dict[str, Any] = {
            "title": subentry.title,
            "subentry_type": subentry.subentry_type,
            "data": dict(subentry.data),
        }
        if subentry.subentry_type == SUBENTRY_AGENT:
            model = str(subentry.data.get(CONF_MODEL, DEFAULT_MODEL))
            item["model_capabilities"] = _capabilities(model)
            if loaded:
                item["runtime"] = _runtime(entry, subentry.subentry_id)
        agents[subentry.subentry_id] = item
    issues = [
        {"translation_key": issue.translation_key, "severity": issue.severity}
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue.data and issue.data.get("entry_id") == entry.entry_id
    ]
    return async_redact_data(
        {
            "title": entry.title,
            "version": f"{entry.version}.{entry.minor_version}",
            "state": entry.state.value,
            "data": {
                **entry.data,
                CONF_ENDPOINT: _endpoint(str(entry.data.get(CONF_ENDPOINT) or "")),
            },
            "options": dict(entry.options),
            "subentries": agents,
            "issues": issues,
        },
        TO_REDACT,
    )
