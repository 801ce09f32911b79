"""One configured agent (subentry): its Live sessions, tools, setup and voice runs.

Shared by the agent's conversation, STT and TTS entities through ``entry.runtime_data.agents``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import Any

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_LLM_HASS_API, CONF_PROMPT
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import llm
from homeassistant.util.ulid import ulid_now

from .const import (
    CONF_ANNOUNCE_TARGET,
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
    LOGGER,
    TOOL_BEHAVIOR_BLOCKING,
)
from .live.connection import Endpoint
from .live.messages import (
    AudioOut,
    Interrupted,
    MediaResolution,
    Scheduling,
    SetupConfig,
    TurnComplete,
)
from .live.models import DEFAULT_MODEL, ModelCapabilities, get_model
from .media import AudioStream, async_get_streams, async_play
from .options import build_setup_config
from .sessions import (
    ConversationSession,
    HandleStore,
    SessionFactory,
    SessionManager,
    TurnItem,
    TurnState,
    trim_system_prompt,
)
from .tools import ToolPolicy, ToolSet, exposed_cameras
from .voice import VoiceRuns


def tool_policy(options: Mapping[str, Any]) -> ToolPolicy:
    """The agent's tool policy from its options."""
    return ToolPolicy(
        non_blocking_actions=options.get(CONF_TOOL_BEHAVIOR) != TOOL_BEHAVIOR_BLOCKING,
        success=Scheduling(options.get(CONF_SUCCESS_SCHEDULING, Scheduling.SILENT.value)),
        failure=Scheduling(options.get(CONF_FAILURE_SCHEDULING, Scheduling.INTERRUPT.value)),
        timeout=float(options.get(CONF_TOOL_TIMEOUT, DEFAULT_TOOL_TIMEOUT)),
    )


class Agent:
    """Runtime of one agent subentry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        subentry: ConfigSubentry,
        endpoint: Endpoint,
        store: HandleStore,
    ) -> None:
        """Create the agent's session manager."""
        self.hass = hass
        self.entry = entry
        self.subentry = subentry
        self.options: Mapping[str, Any] = subentry.data
        self.runs = VoiceRuns()
        self._later: dict[str, AudioStream] = {}
        self.manager = SessionManager(
            hass,
            store,
            SessionFactory(
                endpoint=endpoint,
                usage_signal_id=subentry.subentry_id,
                idle_timeout=float(self.options.get(CONF_IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT)),
            ),
            on_auth_error=lambda: entry.async_start_reauth(hass),
        )

    @property
    def model(self) -> str:
        """The agent's model id."""
        return str(self.options.get(CONF_MODEL, DEFAULT_MODEL))

    @property
    def caps(self) -> ModelCapabilities:
        """The model's capabilities."""
        return get_model(self.model)

    def build(
        self, chat_log: conversation.ChatLog, *, text_only: bool
    ) -> tuple[SetupConfig, ToolSet]:
        """The Live setup and tools for a chat log whose LLM data was provided."""
        resolution = self.options.get(CONF_MEDIA_RESOLUTION)
        system = chat_log.content[0]
        prompt = system.content if isinstance(system, conversation.SystemContent) else ""
        tools = ToolSet(
            self.hass,
            chat_log.llm_api,
            self.caps,
            tool_policy(self.options),
            cameras=exposed_cameras(self.hass) if chat_log.llm_api else (),
            media_resolution=MediaResolution(resolution) if resolution else None,
        )
        setup = build_setup_config(
            self.model,
            self.options,
            system_instruction=trim_system_prompt(prompt, self.caps.context_window),
            text_only=text_only,
        )
        return setup, tools

    def build_for_speech(self, instruction: str) -> tuple[SetupConfig, ToolSet]:
        """An AUDIO setup with the agent's voice and model, a fixed instruction, no tools."""
        setup = build_setup_config(
            self.model, self.options, system_instruction=instruction, text_only=False
        )
        return setup, ToolSet(self.hass, None, self.caps, tool_policy(self.options))

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
            LOGGER.debug(
                "Agent %s: LLM APIs not used for this turn: %s", self.subentry.title, left_out
            )
        return usable or None

    async def _async_is_admin(self, context: Context | None) -> bool:
        if context is None or context.user_id is None:
            return False
        user = await self.hass.auth.async_get_user(context.user_id)
        return user is not None and user.is_admin

    async def _async_audio_setup(self, conversation_id: str) -> tuple[SetupConfig, ToolSet]:
        """Setup + tools for an AUDIO session opened before (or without) a chat log.

        The prompt and tools are rendered on a scratch chat log, as HA would for the turn.
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
        return self.build(scratch, text_only=False)

    async def async_voice_session(self, conversation_id: str) -> ConversationSession:
        """The conversation's voice (AUDIO) session, opened now if needed (pre-warm)."""
        key = f"voice:{conversation_id}"
        if (session := self.manager.sessions.get(key)) is not None and not session.closed:
            return session
        setup, tools = await self._async_audio_setup(conversation_id)
        session = await self.manager.async_get(key, setup, tools)
        session.idle_listeners.append(partial(self._on_idle_event, conversation_id))
        return session

    # ---------------------------------------------------------------- later replies

    def later_reply_targets(self, conversation_id: str) -> list[str]:
        """Where a reply that arrives after its run ended is spoken."""
        if target := self.options.get(CONF_ANNOUNCE_TARGET):
            return [str(target)]
        run = self.runs.latest(conversation_id)
        if run is not None and run.satellite_id:
            return [run.satellite_id]
        return []

    @callback
    def _on_idle_event(self, conversation_id: str, item: TurnItem) -> None:
        """Session output while no run listens: a WHEN_IDLE result, proactive audio..."""
        stream = self._later.get(conversation_id)
        if isinstance(item, AudioOut):
            if stream is None:
                stream = self._later[conversation_id] = async_get_streams(self.hass).create()
                targets = self.later_reply_targets(conversation_id)
                LOGGER.debug("Later reply in %s: playing on %s", conversation_id, targets)
                if targets:
                    self.hass.async_create_task(async_play(self.hass, stream, targets))
            stream.write(item.data)
        elif isinstance(item, (TurnComplete, Interrupted)) and stream is not None:
            stream.end()
            del self._later[conversation_id]

    # ---------------------------------------------------------------- announce

    async def async_announce(self, prompt: str, targets: list[str]) -> str:
        """Gemini answers ``prompt`` aloud on ``targets`` (streamed); returns what it said."""
        key = f"announce:{ulid_now()}"
        setup, tools = await self._async_audio_setup(key)
        session = await self.manager.async_get(key, setup, tools)
        stream = async_get_streams(self.hass).create()
        queue: asyncio.Queue[TurnItem] = asyncio.Queue()

        def sink(item: TurnItem) -> None:
            if isinstance(item, AudioOut):
                stream.write(item.data)
            else:
                queue.put_nowait(item)

        session.attach(sink)
        said: list[str] = []
        try:
            await session.live.send_text(prompt)
            await async_play(self.hass, stream, targets)
            async for delta in session.deltas(queue, TurnState()):
                if content := delta.get("content"):
                    said.append(str(content))
        finally:
            stream.end()
            session.detach(sink)
            await self.manager.async_close(key)
        return "".join(said).strip()

    async def async_close(self) -> None:
        """Close every session and stop every run."""
        for run in self.runs.by_conversation.values():
            run.stop_playback()
        await self.manager.async_close_all()
