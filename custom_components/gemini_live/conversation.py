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
from .live.connection import LiveError
from .repairs import async_clear_issues, async_report_error
from .sessions import TurnState
from .voice import CURRENT_RUN, VoiceRun

PARALLEL_UPDATES = 0

try:  # HA starts streaming TTS once the reply passes this many characters (see voice.py)
    from homeassistant.components.assist_pipeline.default_pipeline import (
        STREAM_RESPONSE_CHARS,
    )
except ImportError:  # pragma: no cover - moved or removed in a later HA
    STREAM_RESPONSE_CHARS = 60
_STREAM_NOW: Final = " " * (STREAM_RESPONSE_CHARS + 1)
INTERRUPT_NOTE: Final = "(The user stopped listening to your reply.)"


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
        """Run one turn: the voice run's Live turn, or a text turn."""
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
        setup, tools = agent.build(chat_log, text_only=True)
        key = f"text:{chat_log.conversation_id}"
        try:
            session = await agent.manager.async_get(key, setup, tools)
        except LiveError as err:
            async_report_error(self.hass, self.entry, self.subentry, err)
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
                async_report_error(self.hass, self.entry, self.subentry, err)
                raise session_error(err) from err
            finally:
                agent.manager.touch(key)
        async_clear_issues(self.hass, self.entry, self.subentry)
        return self._result(user_input, chat_log, state)

    async def _async_voice_turn(
        self,
        run: VoiceRun,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Continue the Live turn the STT started (no second request)."""
        run.agent_started = True
        run.device_id, run.satellite_id = user_input.device_id, user_input.satellite_id
        agent = self.agent
        key = f"voice:{run.conversation_id}"
        session = agent.manager.sessions.get(key)
        try:
            await agent.async_provide(
                chat_log, user_input.as_llm_context(DOMAIN), user_input.extra_system_prompt
            )
            if session is None or session.closed:
                raise session_error(LiveError("the voice session ended before the reply"))
        except conversation.ConverseError as err:
            run.stop_playback()
            return err.as_conversation_result()
        except HomeAssistantError:
            run.stop_playback()
            raise
        session.tools.llm_api = chat_log.llm_api  # this turn's user/device context
        _start_tts_streaming(chat_log)
        state = TurnState()
        try:
            async for _content in chat_log.async_add_delta_content_stream(
                self.entity_id, session.deltas(run.events, state, wait_for_background=False)
            ):
                pass
        except LiveError as err:
            async_report_error(self.hass, self.entry, self.subentry, err)
            raise session_error(err) from err
        finally:
            run.finish_audio()
            session.detach(run.observe)
            agent.manager.touch(key)
        async_clear_issues(self.hass, self.entry, self.subentry)
        return self._result(user_input, chat_log, state)

    @staticmethod
    def _result(
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
        state: TurnState,
    ) -> conversation.ConversationResult:
        if state.interrupted and not isinstance(
            chat_log.content[-1], conversation.AssistantContent
        ):
            # Cut short before the model said anything (barge-in): nothing to say or speak.
            response = intent.IntentResponse(language=user_input.language)
            response.async_set_speech("")
            return conversation.ConversationResult(
                response=response, conversation_id=chat_log.conversation_id
            )
        result = conversation.async_get_result_from_chat_log(user_input, chat_log)
        if state.waiting_for_input:
            result.continue_conversation = True
        return result
