"""One Live session per Home Assistant conversation: the pump, and exactly one consumer per turn.

``LiveConversation`` owns a ``LiveClient`` and the conversation's tools. Its pump reads the
client's events and routes each to exactly one consumer:

- a model turn goes to the consumer of the request it answers (a text turn, a voice run, an
  announcement): requests are registered *before* they reach the wire, so no event can race
  its owner; a follow-up turn (a tool result spoken WHEN_IDLE / INTERRUPT) goes to its
  request's consumer if that one still waits for follow-ups;
- everything else (a follow-up after its voice run ended, proactive audio) goes to the single
  ``later`` listener, if the conversation has one;
- input transcription and VAD signals go to the consumer of the spoken request in progress;
- tool calls run in Home Assistant (``ToolRunner``), their outcomes are answered to the model
  and reported to the consumer of the call's request;
- ``SessionEnded`` (closed: unload, reload, idle, HA stop; or failed) reaches every consumer at
  once, so nothing waits out a timeout.

``Conversations`` keeps one per key for an agent, opens each once even when asked
concurrently, and closes it after the agent's idle time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
import contextlib
from dataclasses import replace
import ssl
from typing import Any, Final, Protocol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later

from ..const import LOGGER
from ..live.driver import LiveClient
from ..live.endpoint import Endpoint
from ..live.errors import AuthenticationError, LiveError, SessionClosedError, TurnEndedError
from ..live.messages import (
    INPUT_AUDIO_RATE,
    InputTranscription,
    SetupConfig,
    ToolCall,
    ToolCallCancellation,
    Usage,
    VoiceActivity,
)
from ..live.protocol import (
    CauseKind,
    HandleUpdated,
    Reconnected,
    SessionEnded,
    TurnEnded,
    TurnLost,
    TurnStarted,
)
from .handles import HandleStore
from .reachability import Reachability
from .tools import ToolOutcome, ToolRunner, ToolSet, result_payload
from .turn_stream import Delta, TurnStream

TURN_TIMEOUT: Final = 90.0  # seconds without any event before a turn is given up
FOLLOWUP_WAIT: Final = 20.0  # seconds a spoken tool result is waited for after the answer


class Consumer(Protocol):
    """Receives the events of the requests it owns, in order, from the pump."""

    @property
    def wants_followups(self) -> bool:
        """Whether follow-up turns of its requests still come to it."""

    def feed(self, item: object) -> None:
        """One event (called by the pump, never awaits)."""


class Inbox:
    """A consumer that queues what it gets, for an async reader."""

    def __init__(self, *, wants_followups: bool = True) -> None:
        """Empty inbox."""
        self.wants_followups = wants_followups
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    def feed(self, item: object) -> None:
        """Queue one event."""
        self._queue.put_nowait(item)

    async def get(self, within: float = TURN_TIMEOUT) -> object:
        """The next event; TimeoutError if none comes ``within`` seconds."""
        async with asyncio.timeout(within):
            return await self._queue.get()


async def stream_deltas(stream: TurnStream, inbox: Inbox) -> AsyncGenerator[Delta]:
    """Chat-log deltas of one request until it is complete; raises the error that ended it.

    A tool result the model was asked to speak (WHEN_IDLE / INTERRUPT) is waited for a while;
    a model that keeps it to itself does not hold the turn open (FOLLOWUP_WAIT).
    """
    for delta in stream.start():
        yield delta
    while not stream.done:
        try:
            item = await inbox.get(FOLLOWUP_WAIT if stream.awaiting_followups else TURN_TIMEOUT)
        except TimeoutError as err:
            if not stream.awaiting_followups:
                raise LiveError("the Live service stopped answering") from err
            LOGGER.debug("The model did not speak a tool's result; ending the turn")
            stream.give_up_followups()
            break
        for delta in stream.feed(item):
            yield delta
    if stream.error is not None:
        raise stream.error
    for delta in stream.finish():
        yield delta
    if stream.abnormal_end is not None and not stream.said_anything:
        raise TurnEndedError(stream.abnormal_end)


class LiveConversation:
    """A Live session bound to one Home Assistant conversation."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        *,
        key: str,
        client: LiveClient,
        tools: ToolSet,
        usage_signal: str,
        later: Consumer | None,
        on_handle: Callable[[str | None], None],
        on_end: Callable[[LiveConversation, LiveError], None],
    ) -> None:
        """Wire the client, the tools and the listeners (``async_start`` connects)."""
        self.hass = hass
        self.key = key
        self.client = client
        self.tools = tools
        self.runner = ToolRunner(entry, tools, client.send_video, self._on_outcome)
        self._entry = entry
        self._usage_signal = usage_signal
        self._later = later
        self._on_handle = on_handle
        self._on_end = on_end
        self._consumers: dict[int, Consumer] = {}
        self._call_consumers: dict[str, Consumer] = {}
        self._speech: Consumer | None = None
        self._owner: Consumer | None = None  # consumer of the turn in progress
        self._pump: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        """Whether the session ended."""
        return self.client.closed

    @property
    def model_busy(self) -> bool:
        """Whether the model is producing a turn."""
        return self.client.protocol.model_busy

    async def async_start(self) -> None:
        """Open the Live connection (raises its LiveError) and start the pump."""
        await self.client.start()
        self._pump = self._entry.async_create_background_task(
            self.hass, self._pump_events(), f"gemini_live_pump_{self.key}"
        )

    async def async_close(self) -> None:
        """Close the session; every consumer gets SessionEnded now (idempotent)."""
        await self.client.close()
        await self.runner.aclose()
        if self._pump is not None and self._pump is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    # ---------------------------------------------------------------- requests

    async def ask(self, text: str, consumer: Consumer, *, image: bytes | None = None) -> int:
        """Send a user text turn owned by ``consumer``; returns its request id."""
        protocol = self.client.protocol
        if image is not None:
            protocol.send_video(image)
        request = protocol.send_text(text)
        self._consumers[request] = consumer  # before anything can answer it
        await self.client.flush()
        return request

    def begin_speech(self, consumer: Consumer) -> int:
        """A spoken request owned by ``consumer``: the audio sent from now on."""
        request = self.client.protocol.begin_speech()
        self._consumers[request] = consumer
        self._speech = consumer
        return request

    async def send_audio(self, pcm: bytes, rate: int = INPUT_AUDIO_RATE) -> None:
        """Microphone audio of the spoken request in progress."""
        await self.client.send_audio(pcm, rate)

    def release(self, request: int) -> None:
        """The request's owner is gone: its events (and later output) go to nobody/``later``."""
        consumer = self._consumers.pop(request, None)
        if consumer is not None:
            if self._speech is consumer:
                self._speech = None
            for call_id, owner in list(self._call_consumers.items()):
                if owner is consumer:
                    del self._call_consumers[call_id]
        self.client.protocol.abandon(request)  # no-op once it is being answered

    async def async_interrupt(self, note: str) -> None:
        """Stop the model's current reply (nobody listens to it any more)."""
        if self.model_busy and not self.closed:
            try:
                await self.client.note(note)
            except LiveError as err:
                LOGGER.debug("Could not interrupt the model: %s", err)

    # ---------------------------------------------------------------- pump

    async def _pump_events(self) -> None:
        async for event in self.client:
            try:
                self._route(event)
            except Exception:
                LOGGER.exception("Error handling a Live event in %s", self.key)
            if isinstance(event, SessionEnded):
                self._on_end(self, event.error)

    def _consumer_for(self, event: TurnStarted) -> Consumer | None:
        cause = event.cause
        consumer = self._consumers.get(cause.request) if cause.request is not None else None
        if consumer is not None and (cause.kind is CauseKind.REQUEST or consumer.wants_followups):
            return consumer
        return self._later

    def _route(self, event: object) -> None:
        match event:
            case TurnStarted():
                self._owner = self._consumer_for(event)
                self._feed(self._owner, event)
            case TurnEnded() | TurnLost():
                self._feed(self._owner, event)
                self._owner = None
            case ToolCall(calls=calls):
                for call in calls:
                    if self._owner is not None:
                        self._call_consumers[call.id] = self._owner
                    self.runner.start(call)
                self._feed(self._owner, event)
            case ToolCallCancellation(ids=ids):
                self.runner.cancel(ids)
                for consumer in {self._call_consumers.pop(i, None) for i in ids} - {None}:
                    self._feed(consumer, event)
            case InputTranscription() | VoiceActivity():
                self._feed(self._speech, event)
            case Usage():
                async_dispatcher_send(self.hass, self._usage_signal, event)
            case HandleUpdated(handle=handle):
                self._on_handle(handle)
            case Reconnected():
                LOGGER.info(
                    "Live session %s reconnected (%s; resumed: %s, replayed: %d, recap: %s)",
                    self.key,
                    event.reason,
                    event.resumed,
                    event.replayed,
                    event.recap,
                )
            case SessionEnded():
                for consumer in {*self._consumers.values(), self._later} - {None}:
                    self._feed(consumer, event)
                self._consumers.clear()
            case _:
                self._feed(self._owner, event)  # model output of the turn in progress

    @staticmethod
    def _feed(consumer: Consumer | None, event: object) -> None:
        if consumer is not None:
            consumer.feed(event)

    async def _on_outcome(self, outcome: ToolOutcome) -> None:
        """A call finished in HA: tell the call's consumer, then answer the model.

        In that order: the model's follow-up to the answer must find the consumer knowing it.
        """
        if (consumer := self._call_consumers.pop(outcome.call.id, None)) is not None:
            consumer.feed(outcome)
        try:
            await self.client.send_tool_results([result_payload(outcome)])
        except LiveError as err:
            LOGGER.debug("Could not answer %s: %s", outcome.ha_name, err)


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------

type Builder = Callable[[], Awaitable[tuple[SetupConfig, ToolSet]]]


class Conversations:
    """The Live conversations of one agent, one per key, closed after the idle time."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        *,
        endpoint: Endpoint,
        ssl_context: ssl.SSLContext | None,
        store: HandleStore,
        agent_id: str,
        usage_signal: str,
        idle_timeout: float,
        on_auth_error: Callable[[], None],
        on_closed: Callable[[str], None],
        reachability: Reachability,
    ) -> None:
        """Create an empty registry (``on_closed(key)`` follows each conversation's end)."""
        self.hass = hass
        self._entry = entry
        self._endpoint = endpoint
        self._ssl = ssl_context
        self._store = store
        self._agent_id = agent_id
        self._usage_signal = usage_signal
        self._idle_timeout = idle_timeout
        self._on_auth_error = on_auth_error
        self._on_closed = on_closed
        self._reachability = reachability
        self._open: dict[str, LiveConversation] = {}
        self._opening: dict[str, asyncio.Future[LiveConversation]] = {}
        self._idle: dict[str, CALLBACK_TYPE] = {}
        self._closed = False

    def _store_key(self, key: str) -> str:
        return f"{self._agent_id}:{key}"

    def get(self, key: str) -> LiveConversation | None:
        """The open conversation for ``key``, if any."""
        conversation = self._open.get(key)
        return conversation if conversation is not None and not conversation.closed else None

    def all(self) -> list[LiveConversation]:
        """The open conversations (diagnostics)."""
        return list(self._open.values())

    async def async_get(
        self, key: str, build: Builder, *, later: Consumer | None = None
    ) -> LiveConversation:
        """The conversation for ``key``, opened (resuming its stored handle) if needed.

        Concurrent callers share one opening; a failure reaches all of them and leaves nothing
        behind.
        """
        if self._closed:
            raise SessionClosedError("the agent is being unloaded")
        if (conversation := self.get(key)) is not None:
            self._cancel_idle(key)
            return conversation
        if (opening := self._opening.get(key)) is not None:
            return await asyncio.shield(opening)
        opening = self._opening[key] = asyncio.get_running_loop().create_future()
        try:
            conversation = await self._async_open(key, build, later)
        except BaseException as err:
            opening.set_exception(err if isinstance(err, Exception) else LiveError("cancelled"))
            opening.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._opening[key]
        opening.set_result(conversation)
        return conversation

    async def _async_open(
        self, key: str, build: Builder, later: Consumer | None
    ) -> LiveConversation:
        setup, tools = await build()
        store_key = self._store_key(key)
        setup = replace(
            setup, functions=tools.declarations, resumption_handle=self._store.get(store_key)
        )

        def on_handle(handle: str | None) -> None:
            if handle is None:
                self._store.discard(store_key)
            else:
                self._store.set(store_key, handle)

        conversation = LiveConversation(
            self.hass,
            self._entry,
            key=key,
            client=LiveClient(self._endpoint, setup, ssl_context=self._ssl),
            tools=tools,
            usage_signal=self._usage_signal,
            later=later,
            on_handle=on_handle,
            on_end=self._on_end,
        )
        try:
            await conversation.async_start()
        except AuthenticationError:
            self._on_auth_error()
            raise
        except LiveError as err:
            self._reachability.failed(err)
            raise
        self._reachability.connected()
        if self._closed:  # unloaded while it was opening
            await conversation.async_close()
            raise SessionClosedError("the agent is being unloaded")
        self._open[key] = conversation
        return conversation

    def _on_end(self, conversation: LiveConversation, error: LiveError) -> None:
        if isinstance(error, AuthenticationError):
            self._on_auth_error()
        if self._reachability.failed(error):
            LOGGER.debug("Live session %s ended: %s", conversation.key, error)
        elif not isinstance(error, SessionClosedError):
            LOGGER.warning("Live session %s ended: %s", conversation.key, error)
        if self._open.get(conversation.key) is conversation:
            del self._open[conversation.key]
            self._cancel_idle(conversation.key)
        self._on_closed(conversation.key)

    async def async_close(self, key: str) -> None:
        """Close one conversation now."""
        self._cancel_idle(key)
        if (conversation := self._open.pop(key, None)) is not None:
            await conversation.async_close()

    @callback
    def touch(self, key: str) -> None:
        """A turn ended: close the conversation after the idle time unless used again."""
        self._cancel_idle(key)
        if self._closed or key not in self._open:
            return

        @callback
        def _expire(_now: Any) -> None:
            self._idle.pop(key, None)
            if (conversation := self._open.pop(key, None)) is not None:
                LOGGER.debug("Closing idle Live session %s", key)
                self._entry.async_create_background_task(
                    self.hass, conversation.async_close(), "gemini_live_idle_close"
                )

        self._idle[key] = async_call_later(self.hass, self._idle_timeout, _expire)

    def _cancel_idle(self, key: str) -> None:
        if (cancel := self._idle.pop(key, None)) is not None:
            cancel()

    async def async_close_all(self) -> None:
        """Close every conversation (unload); nothing can be opened afterwards."""
        self._closed = True
        for cancel in self._idle.values():
            cancel()
        self._idle.clear()
        conversations = list(self._open.values())
        self._open.clear()
        for conversation in conversations:
            await conversation.async_close()
