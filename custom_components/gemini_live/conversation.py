"""Conversation agent: text turns (Assist chat) and the intent stage of voice turns."""

from __future__ import annotations

from typing import Final, Literal

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_LLM_HASS_API, MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import intent
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import GeminiLiveConfigEntry
from .const import DOMAIN
from .entity import GeminiLiveEntity, async_add_agent_entities
from .errors import session_error
from .live.errors import LiveError
from .repairs import async_clear_issues, async_report_error
from .runtime.agent import TurnOutcome
from .runtime.voice_run import CURRENT_RUN, VoiceRun

PARALLEL_UPDATES = 0

try:  # HA starts streaming TTS once the reply passes this many characters (see below)
    from homeassistant.components.assist_pipeline.default_pipeline import (
        STREAM_RESPONSE_CHARS,
    )
except ImportError:  # pragma: no cover - moved or removed in a later HA
    STREAM_RESPONSE_CHARS = 60
_STREAM_NOW: Final = " " * (STREAM_RESPONSE_CHARS + 1)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One conversation entity per agent subentry."""
    async_add_agent_entities(
        entry, async_add_entities, lambda e, s: [GeminiLiveConversationEntity(e, s)]
    )


def _start_tts_streaming(chat_log: conversation.ChatLog) -> None:
    """Make the pipeline start our streaming TTS now, before any reply text exists.

    The pipeline streams TTS only once the reply text passes STREAM_RESPONSE_CHARS; shorter
    replies are synthesised after the agent finished and cached by their text. Our TTS plays
    the Live turn's own audio and ignores the text, so both would only add latency (and the
    cache could replay an earlier turn's audio). A whitespace delta given to the pipeline's
    listener (not to the chat log) switches the run to streaming at once.
    """
    if (listener := chat_log.delta_listener) is not None:
        listener(chat_log, {"role": "assistant"})
        listener(chat_log, {"content": _STREAM_NOW})


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

    @property
    def supported_languages(self) -> list[str] | Literal["*"]:
        """Gemini speaks many languages."""
        return MATCH_ALL

    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Run one turn: the voice run's Live request, or a text turn."""
        run = CURRENT_RUN.get()
        if run is not None and run.agent_id == self.subentry.subentry_id and not run.agent_started:
            return await self._async_voice_turn(run, user_input, chat_log)
        return await self._async_text_turn(user_input, chat_log)

    async def _async_text_turn(
        self, user_input: conversation.ConversationInput, chat_log: conversation.ChatLog
    ) -> conversation.ConversationResult:
        agent = self.agent
        try:
            await agent.async_provide(
                chat_log, user_input.as_llm_context(DOMAIN), user_input.extra_system_prompt
            )
        except conversation.ConverseError as err:
            return err.as_conversation_result()
        outcome = TurnOutcome()
        try:
            async for _content in chat_log.async_add_delta_content_stream(
                self.entity_id, agent.async_text_turn(chat_log, user_input.text, outcome)
            ):
                pass
        except LiveError as err:
            async_report_error(self.hass, self.entry, self.subentry, err)
            raise session_error(err) from err
        async_clear_issues(self.hass, self.entry, self.subentry)
        return self._result(user_input, chat_log, outcome)

    async def _async_voice_turn(
        self,
        run: VoiceRun,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Continue the Live request the STT started (no second request)."""
        run.agent_started = True
        run.device_id, run.satellite_id = user_input.device_id, user_input.satellite_id
        agent = self.agent
        try:
            await agent.async_provide(
                chat_log, user_input.as_llm_context(DOMAIN), user_input.extra_system_prompt
            )
        except conversation.ConverseError as err:
            agent.end_voice_run(run)
            return err.as_conversation_result()
        except HomeAssistantError:
            agent.end_voice_run(run)
            raise
        _start_tts_streaming(chat_log)
        outcome = TurnOutcome()
        try:
            async for _content in chat_log.async_add_delta_content_stream(
                self.entity_id, agent.async_voice_turn(run, chat_log, outcome)
            ):
                pass
        except LiveError as err:
            async_report_error(self.hass, self.entry, self.subentry, err)
            raise session_error(err) from err
        async_clear_issues(self.hass, self.entry, self.subentry)
        return self._result(user_input, chat_log, outcome)

    @staticmethod
    def _result(
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
        outcome: TurnOutcome,
    ) -> conversation.ConversationResult:
        last = chat_log.content[-1]
        if not isinstance(last, conversation.AssistantContent) or not last.content:
            # Nothing said (cut short by a barge-in, or a silent action): nothing to speak.
            response = intent.IntentResponse(language=user_input.language)
            response.async_set_speech("")
            result = conversation.ConversationResult(
                response=response, conversation_id=chat_log.conversation_id
            )
        else:
            result = conversation.async_get_result_from_chat_log(user_input, chat_log)
        if outcome.waiting_for_input and not outcome.interrupted:
            result.continue_conversation = True
        if outcome.sources and (speech := result.response.speech.get("plain")) is not None:
            # Google Search sources, for frontends and automations reading the response.
            result.response.async_set_speech(
                speech["speech"],
                extra_data={
                    "sources": [{"title": title, "uri": uri} for title, uri in outcome.sources]
                },
            )
        return result
