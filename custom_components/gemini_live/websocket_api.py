"""Websocket API: mint ephemeral tokens for client-to-server Live sessions.

``gemini_live/ephemeral_token`` (admin only)

Message fields:
    agent_id: the agent's conversation entity id (for example ``conversation.gemini_live``).
    uses: sessions the token may start (default 1; 0 = unlimited; resumptions are free).
    expire_minutes: lifetime of the token (default 30, at most 1200 = 20 hours).
    new_session_minutes: time within which new sessions may start (default 1, at most
        ``expire_minutes``).

The token's setup is the agent's setup as one of our voice sessions would send it (model, voice,
language, generation and realtime-input settings, compression, transcription), with the agent's
configured prompt rendered as a plain template (``ha_name`` and ``user_name`` are available;
the Home Assistant LLM API prompt and tools are *not* included: the token holder gets no access to
Home Assistant). Every field of that setup is locked by the token's field mask, except
``sessionResumption``, so the holder can still resume its own sessions with its handles.

Result: ``{token, expire_time, new_session_expire_time, uses, model, api_version,
websocket_url}``; ``websocket_url`` is the Constrained endpoint the token works on (send it as
``Authorization: Token <token>`` or ``?access_token=<token>``).

Errors: ``not_found`` (no such agent), ``not_loaded`` (its entry is not loaded),
``invalid_format`` (bad durations), ``template_error`` (the prompt does not render),
``invalid_setup`` (an option the model refuses), ``invalid_auth`` (the API key was rejected),
``cannot_connect`` (token service unreachable), ``token_failed`` (the token service refused).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from homeassistant.components.conversation import DOMAIN as CONVERSATION_DOMAIN
from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import (
    ERR_INVALID_FORMAT,
    ERR_NOT_FOUND,
    ERR_TEMPLATE_ERROR,
)
from homeassistant.components.websocket_api.decorators import (
    async_response,
    require_admin,
    websocket_command,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_PROMPT
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import TemplateError
from homeassistant.helpers import entity_registry as er, template
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import probatio as vol

from .const import CONF_ENDPOINT, CONF_MODEL, DOMAIN, LOGGER, SUBENTRY_AGENT
from .live.endpoint import DEFAULT_BASE_URL, Endpoint
from .live.errors import AuthenticationError, CannotConnectError, LiveError
from .live.messages import build_setup
from .live.models import (
    DEFAULT_MODEL,
    UnknownModelError,
    UnsupportedOptionError,
    check_setup,
    get_model,
)
from .live.tokens import create_token, field_mask, token_request
from .options import build_setup_config, trim_system_prompt
from .validation import make_endpoint

TOKEN_API_VERSION: Final = "v1alpha"  # the Constrained endpoint exists only there
MAX_EXPIRE_MINUTES: Final = 1200
UNLOCKED_FIELDS: Final = ("sessionResumption",)

ERR_NOT_LOADED: Final = "not_loaded"
ERR_INVALID_SETUP: Final = "invalid_setup"
ERR_INVALID_AUTH: Final = "invalid_auth"
ERR_CANNOT_CONNECT: Final = "cannot_connect"
ERR_TOKEN_FAILED: Final = "token_failed"


@callback
def async_register_websocket_commands(hass: HomeAssistant) -> None:
    """Register the integration's websocket commands."""
    async_register_command(hass, ws_ephemeral_token)


def _error(
    connection: ActiveConnection,
    msg_id: int,
    code: str,
    key: str,
    message: str,
    **placeholders: str,
) -> None:
    connection.send_error(
        msg_id,
        code,
        message,
        translation_key=key,
        translation_domain=DOMAIN,
        translation_placeholders=placeholders or None,
    )


@require_admin
@websocket_command(
    {
        vol.Required("type"): f"{DOMAIN}/ephemeral_token",
        vol.Required("agent_id"): str,
        vol.Optional("uses", default=1): vol.All(vol.Coerce(int), vol.Range(min=0)),
        vol.Optional("expire_minutes", default=30): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_EXPIRE_MINUTES)
        ),
        vol.Optional("new_session_minutes", default=1): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_EXPIRE_MINUTES)
        ),
    }
)
@async_response
async def ws_ephemeral_token(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Mint an ephemeral token locked to an agent's Live setup."""
    msg_id: int = msg["id"]
    agent_id: str = msg["agent_id"]
    expire_minutes: int = msg["expire_minutes"]
    new_session_minutes: int = msg["new_session_minutes"]
    if new_session_minutes > expire_minutes:
        _error(
            connection,
            msg_id,
            ERR_INVALID_FORMAT,
            "ws_new_session_after_expiry",
            "new_session_minutes must not exceed expire_minutes",
        )
        return

    ent = er.async_get(hass).async_get(agent_id)
    entry = (
        hass.config_entries.async_get_entry(ent.config_entry_id)
        if ent is not None
        and ent.domain == CONVERSATION_DOMAIN
        and ent.platform == DOMAIN
        and ent.config_entry_id
        else None
    )
    subentry = (
        entry.subentries.get(ent.config_subentry_id)
        if entry is not None and ent is not None and ent.config_subentry_id
        else None
    )
    if entry is None or subentry is None or subentry.subentry_type != SUBENTRY_AGENT:
        _error(
            connection,
            msg_id,
            ERR_NOT_FOUND,
            "ws_agent_not_found",
            f"{agent_id} is not a Gemini Live agent",
            agent_id=agent_id,
        )
        return
    if entry.state is not ConfigEntryState.LOADED:
        _error(
            connection,
            msg_id,
            ERR_NOT_LOADED,
            "ws_entry_not_loaded",
            f"the Gemini Live entry of {agent_id} is not loaded",
            agent_id=agent_id,
        )
        return

    options = subentry.data
    model = str(options.get(CONF_MODEL, DEFAULT_MODEL))
    try:
        prompt = template.Template(str(options.get(CONF_PROMPT) or ""), hass).async_render(
            {
                "ha_name": hass.config.location_name,
                "user_name": connection.user.name,
                "llm_context": None,
            },
            parse_result=False,
        )
    except TemplateError as err:
        _error(
            connection,
            msg_id,
            ERR_TEMPLATE_ERROR,
            "ws_prompt_error",
            f"the agent's prompt does not render: {err}",
            error=str(err),
        )
        return
    try:
        caps = get_model(model)
        cfg = build_setup_config(
            model,
            options,
            system_instruction=trim_system_prompt(prompt, caps.context_window) or None,
        )
        check_setup(cfg)
    except (UnknownModelError, UnsupportedOptionError) as err:
        _error(
            connection,
            msg_id,
            ERR_INVALID_SETUP,
            "ws_invalid_setup",
            f"the agent's setup is not valid: {err}",
            error=str(err),
        )
        return
    setup = build_setup(cfg)["setup"]
    locked = [
        path
        for path in field_mask(setup)
        if not any(path == f or path.startswith(f"{f}.") for f in UNLOCKED_FIELDS)
    ]
    body = token_request(
        setup=setup,
        locked_fields=locked,
        uses=msg["uses"],
        expire_in=timedelta(minutes=expire_minutes),
        new_session_expire_in=timedelta(minutes=new_session_minutes),
    )
    base_url: str = entry.data.get(CONF_ENDPOINT) or DEFAULT_BASE_URL
    try:
        token = await create_token(
            async_get_clientsession(hass),
            make_endpoint(entry.data[CONF_API_KEY], base_url),
            body,
        )
    except AuthenticationError as err:
        _error(
            connection,
            msg_id,
            ERR_INVALID_AUTH,
            "ws_invalid_auth",
            f"the Gemini API key was rejected: {err}",
        )
        return
    except CannotConnectError as err:
        _error(
            connection,
            msg_id,
            ERR_CANNOT_CONNECT,
            "ws_cannot_connect",
            f"cannot reach the token service: {err}",
            error=str(err),
        )
        return
    except LiveError as err:
        _error(
            connection,
            msg_id,
            ERR_TOKEN_FAILED,
            "ws_token_failed",
            f"the token service refused the request: {err}",
            error=str(err),
        )
        return

    LOGGER.debug(
        "Minted an ephemeral token for %s (%d uses, expires %s)",
        agent_id,
        token.uses,
        token.expire_time.isoformat(),
    )
    connection.send_result(
        msg_id,
        {
            "token": token.name,
            "expire_time": token.expire_time.isoformat(),
            "new_session_expire_time": (
                token.new_session_expire_time.isoformat() if token.new_session_expire_time else None
            ),
            "uses": token.uses,
            "model": caps.id,
            "api_version": TOKEN_API_VERSION,
            "websocket_url": Endpoint(token=token.name, base_url=base_url).url(TOKEN_API_VERSION),
        },
    )
