"""One configured agent (subentry): the one API its entities, actions and commands use.

It owns the agent's conversations (``Conversations``: one Live session per HA conversation, text
and voice apart since they differ in response modality), its voice runs and its later replies.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field, replace
import ssl
from typing import Any

from homeassistant.components import conversation
from homeassistant.components.intent import async_device_supports_timers
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_LLM_HASS_API, CONF_PROMPT
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er, llm
from homeassistant.util.ulid import ulid_now

from ..const import (
    CONF_ANNOUNCE_TARGET,
    CONF_FAILURE_SCHEDULING,
    CONF_IDLE_TIMEOUT,
    CONF_MEDIA_RESOLUTION,
    CONF_MODEL,
    CONF_SUCCESS_SCHEDULING,
    CONF_TOOL_BEHAVIOR,
    CONF_TOOL_TIMEOUT,
    CONF_VOCABULARY,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TOOL_TIMEOUT,
    DOMAIN,
    LOGGER,
    SIGNAL_USAGE,
    TOOL_BEHAVIOR_BLOCKING,
)
from ..live.endpoint import Endpoint
from ..live.errors import SessionClosedError
from ..live.messages import AudioOut, MediaResolution, Scheduling, SetupConfig
from ..live.models import DEFAULT_MODEL, ModelCapabilities, get_model
from ..options import build_setup_config, trim_system_prompt
from .conversation import Conversations, Inbox, LiveConversation, stream_deltas
from .handles import HandleStore
from .playback import LaterReplies, PcmStream, async_play
from .reachability import Reachability
from .tools import ToolPolicy, ToolSet, exposed_cameras
from .turn_stream import Delta, TurnStream
from .vocabulary import home_vocabulary
from .voice_run import VoiceRun, VoiceRuns

INTERRUPT_NOTE = "(The user stopped listening to your reply.)"


def tool_policy(options: Mapping[str, Any]) -> ToolPolicy:
    """The agent's tool policy from its options."""
    return ToolPolicy(
        non_blocking_actions=options.get(CONF_TOOL_BEHAVIOR) != TOOL_BEHAVIOR_BLOCKING,
        success=Scheduling(options.get(CONF_SUCCESS_SCHEDULING, Scheduling.SILENT.value)),
        failure=Scheduling(options.get(CONF_FAILURE_SCHEDULING, Scheduling.INTERRUPT.value)),
        timeout=float(options.get(CONF_TOOL_TIMEOUT, DEFAULT_TOOL_TIMEOUT)),
    )


def text_key(conversation_id: str) -> str:
    """Key of a conversation's text (chat) session."""
    return f"text:{conversation_id}"


def voice_key(conversation_id: str) -> str:
    """Key of a conversation's voice session."""
    return f"voice:{conversation_id}"


@dataclass(slots=True)
class TurnOutcome:
    """What a finished turn tells the conversation result."""

    waiting_for_input: bool = False
    interrupted: bool = False
    sources: list[tuple[str, str]] = field(default_factory=list)  # (title, uri) from Google Search


class Agent:
    """Runtime of one agent subentry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        subentry: ConfigSubentry,
        endpoint: Endpoint,
        store: HandleStore,
        *,
        ssl_context: ssl.SSLContext | None,
        reachability: Reachability,
    ) -> None:
        """Create the agent's registry of conversations."""
        self.hass = hass
        self.entry = entry
        self.subentry = subentry
        self.endpoint = endpoint
        self.ssl_context = ssl_context
        self.options: Mapping[str, Any] = subentry.data
        self.runs = VoiceRuns()
        # (rate, channels) of the last reply streamed as FLAC: a voice run opens its reply's
        # encoder ahead in it (see reply_audio.py)
        self.reply_flac_format: tuple[int, int] | None = None
        self.conversations = Conversations(
            hass,
            entry,
            endpoint=endpoint,
            ssl_context=ssl_context,
            store=store,
            agent_id=subentry.subentry_id,
            usage_signal=SIGNAL_USAGE.format(subentry.subentry_id),
            idle_timeout=float(self.options.get(CONF_IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT)),
            on_auth_error=lambda: entry.async_start_reauth(hass),
            on_closed=self._on_closed,
            reachability=reachability,
        )

    @property
    def model(self) -> str:
        """The agent's model id."""
        return str(self.options.get(CONF_MODEL, DEFAULT_MODEL))

    @property
    def caps(self) -> ModelCapabilities:
        """The model's capabilities."""
        return get_model(self.model)

    @property
    def title(self) -> str:
        """The agent's name."""
        return self.subentry.title

    # ---------------------------------------------------------------- setup

    def build(
        self,
        chat_log: conversation.ChatLog,
        *,
        text_only: bool,
        llm_api: llm.APIInstance | None = None,
    ) -> tuple[SetupConfig, ToolSet]:
        """The Live setup and tools for a chat log whose LLM data was provided.

        ``llm_api`` (default: the chat log's) is what the function declarations come from.
        """
        resolution = self.options.get(CONF_MEDIA_RESOLUTION)
        system = chat_log.content[0]
        prompt = system.content if isinstance(system, conversation.SystemContent) else ""
        llm_api = llm_api or chat_log.llm_api
        tools = ToolSet(
            self.hass,
            llm_api,
            self.caps,
            tool_policy(self.options),
            cameras=exposed_cameras(self.hass) if llm_api else (),
            media_resolution=MediaResolution(resolution) if resolution else None,
        )
        setup = build_setup_config(
            self.model,
            self.options,
            system_instruction=trim_system_prompt(prompt, self.caps.context_window),
            text_only=text_only,
            vocabulary=() if text_only else self.vocabulary(),
        )
        return setup, tools

    def vocabulary(self) -> list[str]:
        """Phrases that bias what the Live service hears: the agent's and the home's names."""
        extra = self.options.get(CONF_VOCABULARY) or []
        return home_vocabulary(self.hass, [extra] if isinstance(extra, str) else extra)

    def build_for_speech(self, instruction: str) -> SetupConfig:
        """An AUDIO setup with the agent's voice and model, a fixed instruction, no tools."""
        return build_setup_config(
            self.model, self.options, system_instruction=instruction, text_only=False
        )

    async def async_provide(
        self, chat_log: conversation.ChatLog, llm_context: llm.LLMContext, extra: str | None
    ) -> None:
        """Fill the chat log's system prompt and LLM API (raises ConverseError)."""
        await chat_log.async_provide_llm_data(
            llm_context,
            await self._async_usable_apis(llm_context.context),
            self.options.get(CONF_PROMPT),
            extra,
        )

    async def _async_usable_apis(self, context: Context | None) -> list[str] | None:
        """The agent's LLM APIs that ``context``'s user may use.

        An API that requires an administrator (HA 2026.11's "Home Assistant" API) is left out
        for anyone else, such as a voice satellite's run, which has no user: asking HA for it
        would fail the whole turn. APIs that no longer exist are left out too.
        """
        selected = self.options.get(CONF_LLM_HASS_API)
        if not selected:
            return None
        wanted = [selected] if isinstance(selected, str) else list(selected)
        admin: bool | None = None
        usable: list[str] = []
        for api in llm.async_get_apis(self.hass):
            if api.id not in wanted:
                continue
            if getattr(api, "requires_admin", False):  # HA 2026.11+
                if admin is None:
                    admin = await self._async_is_admin(context)
                if not admin:
                    continue
            usable.append(api.id)
        if left_out := [api_id for api_id in wanted if api_id not in usable]:
            LOGGER.debug("Agent %s: LLM APIs not used for this turn: %s", self.title, left_out)
        return usable or None

    async def _async_is_admin(self, context: Context | None) -> bool:
        if context is None or context.user_id is None:
            return False
        user = await self.hass.auth.async_get_user(context.user_id)
        return user is not None and user.is_admin

    async def _async_audio_setup(self, conversation_id: str) -> tuple[SetupConfig, ToolSet]:
        """Setup + tools for an AUDIO session opened before (or without) a chat log.

        The prompt and tools are rendered on a scratch chat log as HA renders them for a turn
        that has no user (a satellite's). The satellite is not known yet (HA tells the STT
        nothing about it), so the prompt has no area; but a satellite that keeps timers needs
        HA's timer tools declared, which HA only lists for such a device: the declarations come
        from a timer device's view of the same APIs (calls then run with the real device).
        """
        scratch = conversation.ChatLog(self.hass, conversation_id)
        context = llm.LLMContext(
            platform=DOMAIN,
            context=Context(),
            language=None,
            assistant=conversation.DOMAIN,
            device_id=None,
        )
        await self.async_provide(scratch, context, None)
        tools_api = scratch.llm_api
        if tools_api is not None and (device_id := self._timer_device()) is not None:
            apis = await self._async_usable_apis(None)
            if apis:
                tools_api = await llm.async_get_api(
                    self.hass, apis, replace(context, device_id=device_id)
                )
        return self.build(scratch, text_only=False, llm_api=tools_api)

    def _timer_device(self) -> str | None:
        """A satellite's device that keeps timers (an ESPHome voice satellite), if any."""
        entities = er.async_get(self.hass)
        for state in self.hass.states.async_all("assist_satellite"):
            entry = entities.async_get(state.entity_id)
            if (
                entry
                and entry.device_id
                and async_device_supports_timers(self.hass, entry.device_id)
            ):
                return entry.device_id
        return None

    # ---------------------------------------------------------------- text turns

    async def async_text_turn(
        self,
        chat_log: conversation.ChatLog,
        text: str,
        outcome: TurnOutcome,
        *,
        image: bytes | None = None,
    ) -> AsyncGenerator[Delta]:
        """Chat-log deltas of a text turn (the chat log's LLM data must be provided)."""
        key = text_key(chat_log.conversation_id)

        async def build() -> tuple[SetupConfig, ToolSet]:
            return self.build(chat_log, text_only=True)

        live = await self.conversations.async_get(key, build)
        live.tools.llm_api = chat_log.llm_api  # this turn's user/device context
        inbox = Inbox(wants_followups=True)
        stream = TurnStream(live.tools.ha_name, wait_for_followups=True)
        request = await live.ask(text, inbox, image=image)
        try:
            async for delta in stream_deltas(stream, inbox):
                yield delta
        finally:
            live.release(request)
            outcome.waiting_for_input = stream.waiting_for_input
            outcome.interrupted = stream.interrupted
            outcome.sources = stream.sources
            self.conversations.touch(key)

    # ---------------------------------------------------------------- voice runs

    async def async_voice_conversation(self, conversation_id: str) -> LiveConversation:
        """The conversation's voice (AUDIO) session, opened now if needed (pre-warm)."""

        async def build() -> tuple[SetupConfig, ToolSet]:
            return await self._async_audio_setup(conversation_id)

        return await self.conversations.async_get(
            voice_key(conversation_id),
            build,
            later=LaterReplies(
                self.hass, self.entry, lambda: self.later_reply_targets(conversation_id)
            ),
        )

    async def async_begin_voice_run(self, run: VoiceRun) -> LiveConversation:
        """Start ``run``: supersede the conversation's previous run, begin its spoken request."""
        previous = self.runs.start(run)
        live = await self.async_voice_conversation(run.conversation_id)
        if previous is not None:
            previous.supersede()  # its playback and agent stage end now (barge-in)
            if previous.request is not None:
                live.release(previous.request)
            await live.async_interrupt(INTERRUPT_NOTE)
        run.request = live.begin_speech(run)
        return live

    async def async_voice_turn(
        self, run: VoiceRun, chat_log: conversation.ChatLog, outcome: TurnOutcome
    ) -> AsyncGenerator[Delta]:
        """Chat-log deltas of the run's Live request (continued, not sent again)."""
        key = voice_key(run.conversation_id)
        live = self.conversations.get(key)
        if live is None or run.request is None:
            run.stop_playback()
            raise SessionClosedError("the voice session ended before the reply")
        live.tools.llm_api = chat_log.llm_api  # this turn's user/device context
        stream = TurnStream(live.tools.ha_name, wait_for_followups=False)
        try:
            async for delta in stream_deltas(stream, run.inbox):
                yield delta
        finally:
            run.finish_audio()
            live.release(run.request)
            outcome.waiting_for_input = stream.waiting_for_input
            outcome.interrupted = stream.interrupted
            outcome.sources = stream.sources
            self.conversations.touch(key)

    def end_voice_run(self, run: VoiceRun) -> None:
        """The run ends without an agent stage (no speech, an error): release its request."""
        run.stop_playback()
        live = self.conversations.get(voice_key(run.conversation_id))
        if live is not None and run.request is not None:
            live.release(run.request)
            self.conversations.touch(voice_key(run.conversation_id))

    # ---------------------------------------------------------------- later replies

    def later_reply_targets(self, conversation_id: str) -> list[str]:
        """Where a reply that arrives after its run ended is spoken."""
        if target := self.options.get(CONF_ANNOUNCE_TARGET):
            return [str(target)]
        run = self.runs.latest(conversation_id)
        if run is not None and run.satellite_id:
            return [run.satellite_id]
        return []

    def _on_closed(self, key: str) -> None:
        """A conversation closed: forget what only it needed."""
        if key.startswith("voice:"):
            self.runs.forget(key.removeprefix("voice:"))

    # ---------------------------------------------------------------- announce

    async def async_announce(self, prompt: str, targets: list[str]) -> str:
        """Gemini answers ``prompt`` aloud on ``targets`` (streamed); returns what it said."""
        key = f"announce:{ulid_now()}"

        async def build() -> tuple[SetupConfig, ToolSet]:
            return await self._async_audio_setup(key)

        live = await self.conversations.async_get(key, build)
        stream = PcmStream()
        inbox = _AnnounceInbox(stream)
        said: list[str] = []
        try:
            request = await live.ask(prompt, inbox)
            await async_play(self.hass, stream, targets)
            turn = TurnStream(live.tools.ha_name, wait_for_followups=False)
            async for delta in stream_deltas(turn, inbox):
                if content := delta.get("content"):
                    said.append(str(content))
            live.release(request)
        finally:
            stream.end()
            await self.conversations.async_close(key)
        return "".join(said).strip()

    async def async_close(self) -> None:
        """Close every conversation and stop every run."""
        for run in self.runs.by_conversation.values():
            run.stop_playback()
        await self.conversations.async_close_all()


class _AnnounceInbox(Inbox):
    """The announcement's consumer: audio to the stream, the rest to the turn stream."""

    def __init__(self, stream: PcmStream) -> None:
        super().__init__(wants_followups=False)
        self._stream = stream

    def feed(self, item: object) -> None:
        if isinstance(item, AudioOut):
            self._stream.write(item.data)
        else:
            super().feed(item)
