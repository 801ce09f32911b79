"""Conversation agent: text turns (Assist chat) and the intent stage of voice turns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_LLM_HASS_API, CONF_PROMPT, MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import GeminiLiveConfigEntry
from .const import (
    CONF_FAILURE_SCHEDULING,
    CONF_IDLE_TIMEOUT,
    CONF_MEDIA_RESOLUTION,
    CONF_MODEL,
    CONF_SUCCESS_SCHEDULING,
    CONF_TOOL_BEHAVIOR,
    CONF_TOOL_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TOOL_TIMEOUT,
    DOMAIN,
    SUBENTRY_AGENT,
    TOOL_BEHAVIOR_BLOCKING,
)
from .entity import GeminiLiveEntity
from .live.connection import LiveError
from .live.messages import MediaResolution, Scheduling
from .live.models import DEFAULT_MODEL, get_model
from .options import build_setup_config
from .sessions import SessionFactory, SessionManager, TurnState, trim_system_prompt
from .tools import ToolPolicy, ToolSet, exposed_cameras
from .validation import make_endpoint

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One conversation entity per agent subentry."""
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_AGENT:
            async_add_entities(
                [GeminiLiveConversationEntity(entry, subentry)],
                config_subentry_id=subentry.subentry_id,
            )


def tool_policy(options: Mapping[str, Any]) -> ToolPolicy:
    """The agent's tool policy from its options."""
    return ToolPolicy(
        non_blocking_actions=options.get(CONF_TOOL_BEHAVIOR) != TOOL_BEHAVIOR_BLOCKING,
        success=Scheduling(options.get(CONF_SUCCESS_SCHEDULING, Scheduling.SILENT.value)),
        failure=Scheduling(options.get(CONF_FAILURE_SCHEDULING, Scheduling.INTERRUPT.value)),
        timeout=float(options.get(CONF_TOOL_TIMEOUT, DEFAULT_TOOL_TIMEOUT)),
    )


class GeminiLiveConversationEntity(conversation.ConversationEntity, GeminiLiveEntity):
    """A conversation agent backed by Gemini Live sessions."""

    _attr_name = None
    _attr_supports_streaming = True

    def __init__(self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry) -> None:
        """Initialise the agent."""
        super().__init__(entry, subentry)
        self._attr_unique_id = subentry.subentry_id
        if subentry.data.get(CONF_LLM_HASS_API):
            self._attr_supported_features = conversation.ConversationEntityFeature.CONTROL
        data = entry.runtime_data
        self.manager = SessionManager(
            entry.runtime_data.hass,
            data.store,
            SessionFactory(
                endpoint=make_endpoint(data.api_key, data.endpoint),
                usage_signal_id=subentry.subentry_id,
                idle_timeout=float(subentry.data.get(CONF_IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT)),
            ),
            on_auth_error=lambda: entry.async_start_reauth(entry.runtime_data.hass),
        )

    @property
    def supported_languages(self) -> list[str] | Literal["*"]:
        """Gemini speaks many languages."""
        return MATCH_ALL

    async def async_will_remove_from_hass(self) -> None:
        """Close every Live session of this agent."""
        await self.manager.async_close_all()
        await super().async_will_remove_from_hass()

    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Run one text turn on the conversation's Live session."""
        options = self.subentry.data
        try:
            await chat_log.async_provide_llm_data(
                user_input.as_llm_context(DOMAIN),
                options.get(CONF_LLM_HASS_API),
                options.get(CONF_PROMPT),
                user_input.extra_system_prompt,
            )
        except conversation.ConverseError as err:
            return err.as_conversation_result()

        model = options.get(CONF_MODEL, DEFAULT_MODEL)
        caps = get_model(model)
        system = chat_log.content[0]
        prompt = system.content if isinstance(system, conversation.SystemContent) else ""
        system_prompt = trim_system_prompt(prompt, caps.context_window)
        tools = ToolSet(
            self.hass,
            chat_log.llm_api,
            caps,
            tool_policy(options),
            cameras=exposed_cameras(self.hass) if chat_log.llm_api else (),
        )
        resolution = options.get(CONF_MEDIA_RESOLUTION)
        tools.set_media_resolution(MediaResolution(resolution) if resolution else None)
        setup = build_setup_config(model, options, system_instruction=system_prompt, text_only=True)
        conversation_id = f"text:{chat_log.conversation_id}"
        try:
            session = await self.manager.async_get(conversation_id, setup, tools)
        except LiveError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="cannot_open_session",
                translation_placeholders={"error": str(err)},
            ) from err

        state = TurnState()
        async with session.lock:
            try:
                async for _content in chat_log.async_add_delta_content_stream(
                    self.entity_id, session.text_turn(user_input.text, state)
                ):
                    pass
            except LiveError as err:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="session_error",
                    translation_placeholders={"error": str(err)},
                ) from err
            finally:
                self.manager.touch(conversation_id)

        result = conversation.async_get_result_from_chat_log(user_input, chat_log)
        if state.waiting_for_input:
            result.continue_conversation = True
        return result
