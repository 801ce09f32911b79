"""One Live session per conversation: creation, resumption across restarts, turns, idle close.

A ``ConversationSession`` owns a LiveSession, its ToolSet/ToolRunner and a pump task that reads
the session's events and hands them to the turn in progress (or to idle listeners: later replies
such as WHEN_IDLE results or proactive audio). ``SessionManager`` keeps one per conversation_id for
an agent and closes them after the agent's idle time; ``HandleStore`` persists each conversation's
newest resumption handle so a later turn, even after a restart, resumes within the 2 h validity.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
import contextlib
from dataclasses import dataclass, replace
import time
from typing import Any, Final

from homeassistant.components.conversation import (
    AssistantContentDeltaDict,
    ToolResultContentDeltaDict,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import llm
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store

from .const import HANDLE_VALIDITY_S, LOGGER, SIGNAL_USAGE, STORAGE_KEY, STORAGE_VERSION
from .live.connection import AuthenticationError, Endpoint, InvalidArgumentError, LiveError
from .live.messages import (
    AudioOut,
    Interrupted,
    OutputTranscription,
    Scheduling,
    SetupConfig,
    TextOut,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    Usage,
    client_content,
)
from .live.session import LiveSession, SessionEvent
from .tools import ToolOutcome, ToolRunner, ToolSet

type Delta = AssistantContentDeltaDict | ToolResultContentDeltaDict
type TurnItem = SessionEvent | ToolOutcome | LiveError

NEED_MORE_INPUT: Final = "NEED_MORE_INPUT"
TURN_TIMEOUT: Final = 90.0  # seconds without any server event before a turn is given up
FOLLOWUP_SCHEDULING: Final = frozenset({Scheduling.WHEN_IDLE, Scheduling.INTERRUPT})
CHARS_PER_TOKEN: Final = 4  # rough estimate for prompt budgeting


# ------------------------------------------------------------------------------------------------
# Persistence of resumption handles
# ------------------------------------------------------------------------------------------------


class HandleStore:
    """Newest resumption handle per (agent, conversation), valid for 2 h."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Prepare the store of one config entry."""
        self._store: Store[dict[str, dict[str, Any]]] = Store(
            hass, STORAGE_VERSION, f"{STORAGE_KEY}.{entry_id}", private=True
        )
        self._data: dict[str, dict[str, Any]] = {}

    async def async_load(self) -> None:
        """Load and drop expired handles."""
        self._data = (await self._store.async_load()) or {}
        self._prune()

    def _prune(self) -> None:
        now = time.time()
        self._data = {
            key: item
            for key, item in self._data.items()
            if now - float(item.get("updated", 0)) < HANDLE_VALIDITY_S
        }

    def get(self, key: str) -> str | None:
        """A still valid handle for ``key``."""
        item = self._data.get(key)
        if item and time.time() - float(item["updated"]) < HANDLE_VALIDITY_S:
            return str(item["handle"])
        return None

    def count(self, prefix: str = "") -> int:
        """How many still valid handles have keys starting with ``prefix`` (diagnostics)."""
        now = time.time()
        return sum(
            1
            for key, item in self._data.items()
            if key.startswith(prefix) and now - float(item["updated"]) < HANDLE_VALIDITY_S
        )

    @callback
    def set(self, key: str, handle: str) -> None:
        """Remember ``handle`` (saved shortly after, batched)."""
        self._data[key] = {"handle": handle, "updated": time.time()}
        self._store.async_delay_save(self._snapshot, 1.0)

    @callback
    def discard(self, key: str) -> None:
        """Forget a handle the server refused."""
        if self._data.pop(key, None) is not None:
            self._store.async_delay_save(self._snapshot, 1.0)

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        self._prune()
        return dict(self._data)

    async def async_flush(self) -> None:
        """Write now (on unload)."""
        await self._store.async_save(self._snapshot())

    async def async_remove(self) -> None:
        """Delete the stored handles (the entry was removed)."""
        self._data = {}
        await self._store.async_remove()


# ------------------------------------------------------------------------------------------------
# A conversation's session
# ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TurnState:
    """What one turn saw (read by the caller after the deltas end)."""

    waiting_for_input: bool = False
    interrupted: bool = False


class ConversationSession:
    """A Live session bound to one conversation_id."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        key: str,
        live: LiveSession,
        tools: ToolSet,
        usage_signal: str,
        on_fatal: Callable[[ConversationSession, LiveError], None],
    ) -> None:
        """Wire the session, its tools and the pump."""
        self.hass = hass
        self.key = key
        self.live = live
        self.tools = tools
        self.runner = ToolRunner(hass, tools, live.send_tool_response, live.send_video)
        self.runner.listeners.append(self._on_outcome)
        self.lock = asyncio.Lock()
        self.idle_listeners: list[Callable[[SessionEvent | ToolOutcome], None]] = []
        self._usage_signal = usage_signal
        self._on_fatal = on_fatal
        self._sink: Callable[[TurnItem], None] | None = None  # the turn receiving events
        self._pump: asyncio.Task[None] | None = None
        self._followups = 0
        self._output_since_outcome = False
        self.model_busy = False  # the model is producing a turn (until turnComplete/interrupted)
        self._discard_rest = False
        self.closed = False

    async def async_start(self) -> None:
        """Open the Live connection and start the pump."""
        await self.live.start()
        self._pump = self.hass.async_create_background_task(
            self._pump_events(), name=f"gemini_live_pump_{self.key}"
        )

    async def async_close(self) -> None:
        """Close everything (idempotent)."""
        if self.closed:
            return
        self.closed = True
        await self.runner.aclose()
        await self.live.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    # ---------------------------------------------------------------- pump

    def _deliver(self, item: SessionEvent | ToolOutcome) -> None:
        if self._sink is not None:
            self._sink(item)
            return
        if self._discard_rest:
            # The rest of a turn whose listener went away (run cancelled, satellite gone).
            if isinstance(item, (TurnComplete, Interrupted)):
                self._discard_rest = False
            return
        for listener in list(self.idle_listeners):
            listener(item)

    async def _pump_events(self) -> None:
        try:
            async for event in self.live:
                match event:
                    case Usage():
                        async_dispatcher_send(self.hass, self._usage_signal, event)
                    case ToolCall(calls=calls):
                        for call in calls:
                            self.runner.start(call)
                    case ToolCallCancellation(ids=ids):
                        self.runner.cancel(ids)
                    case AudioOut() | TextOut() | OutputTranscription():
                        self._output_since_outcome = True
                        self.model_busy = True
                    case TurnComplete() | Interrupted():
                        self.model_busy = False
                    case _:
                        pass
                self._deliver(event)
        except LiveError as err:
            LOGGER.warning("Live session for %s ended: %s", self.key, err)
            if self._sink is not None:
                self._sink(err)
            self._on_fatal(self, err)

    def _on_outcome(self, outcome: ToolOutcome) -> None:
        if outcome.scheduling in FOLLOWUP_SCHEDULING:
            self._followups += 1
            self._output_since_outcome = False
        self._deliver(outcome)

    # ---------------------------------------------------------------- turns

    async def text_turn(
        self, text: str, state: TurnState, *, image: bytes | None = None
    ) -> AsyncGenerator[Delta]:
        """Send a text turn; yield chat-log deltas until the model is done with it.

        Audio is dropped (text-only caller). The turn lasts until turnComplete with no tool still
        running and no WHEN_IDLE/INTERRUPT result still to be spoken.
        """
        queue: asyncio.Queue[TurnItem] = asyncio.Queue()
        self._sink = queue.put_nowait
        try:
            if image is not None:
                await self.live.send_video(image)
            await self.live.send_text(text)
            async for delta in self.deltas(queue, state):
                yield delta
        finally:
            self._sink = None
            self._discard_rest = self.model_busy

    async def async_interrupt(self, note: str) -> None:
        """Stop the model's current reply (nobody listens to it any more).

        Any clientContent interrupts generation; ``note`` also tells the model why.
        """
        if self.model_busy and not self.closed:
            try:
                await self.live.send(client_content([("user", note)], turn_complete=False))
            except LiveError as err:
                LOGGER.debug("Could not interrupt the model: %s", err)

    @property
    def listened(self) -> bool:
        """Whether a turn currently receives the session's events."""
        return self._sink is not None

    def attach(self, sink: Callable[[TurnItem], None]) -> None:
        """Send the session's events to ``sink`` (a voice run) until ``detach``."""
        self._sink = sink

    def detach(self, sink: Callable[[TurnItem], None]) -> None:
        """Stop sending events to ``sink`` (no-op if another turn took over).

        If the model is still producing that turn, the rest of it is dropped (its listener is
        gone); only output of later turns reaches the idle listeners.
        """
        if self._sink == sink:
            self._sink = None
            self._discard_rest = self.model_busy

    async def deltas(
        self, queue: asyncio.Queue[TurnItem], state: TurnState, *, wait_for_background: bool = True
    ) -> AsyncGenerator[Delta]:
        """Chat-log deltas of one turn.

        While a call of this turn is unresolved, the model's text is held back and added after
        the call's result (NON_BLOCKING models talk while tools run), so the chat log reads
        call -> result -> reply and always ends with the assistant's reply.

        ``wait_for_background``: keep the turn open until running tools finished and their
        WHEN_IDLE/INTERRUPT results were spoken (text chat). Voice runs end with the model's
        turn; what comes later is spoken as a later reply (see agent.py).
        """
        yield {"role": "assistant"}
        message_open = True
        calls_in_turn: dict[str, str] = {}  # unresolved call id -> HA tool name
        held: list[str] = []
        completed = False  # a turnComplete arrived and no model output followed yet

        def flush() -> list[Delta]:
            nonlocal message_open
            if calls_in_turn or not held:
                return []
            text = "".join(held)
            held.clear()
            message_open = True
            return [{"role": "assistant", "content": text}]

        while True:
            background = wait_for_background and (self.runner.running or self._followups)
            if completed and queue.empty() and not background:
                calls_in_turn.clear()
                for delta in flush():
                    yield delta
                return
            try:
                async with asyncio.timeout(TURN_TIMEOUT):
                    item = await queue.get()
            except TimeoutError as err:
                raise LiveError("the Live service stopped answering") from err
            match item:
                case LiveError():
                    raise item
                case OutputTranscription(text=text) | TextOut(text=text, thought=False):
                    completed = False
                    if calls_in_turn:
                        held.append(text)
                    elif text:
                        if not message_open:
                            yield {"role": "assistant"}
                            message_open = True
                        yield {"content": text}
                case TextOut(text=text, thought=True):
                    if not message_open:
                        yield {"role": "assistant"}
                        message_open = True
                    yield {"thinking_content": text}
                case ToolCall(calls=calls):
                    inputs = []
                    for call in calls:
                        ha_name = self.tools.ha_name(call.name) or call.name
                        calls_in_turn[call.id] = ha_name
                        inputs.append(
                            llm.ToolInput(
                                tool_name=ha_name, tool_args=call.args, id=call.id, external=True
                            )
                        )
                    if not message_open:
                        yield {"role": "assistant"}
                    yield {"tool_calls": inputs}
                    message_open = True
                case ToolOutcome(call=call, ha_name=ha_name, result=result):
                    if calls_in_turn.pop(call.id, None) is not None:
                        yield {
                            "role": "tool_result",
                            "tool_call_id": call.id,
                            "tool_name": ha_name,
                            "result": result,
                        }
                        message_open = False
                        for delta in flush():
                            yield delta
                case ToolCallCancellation(ids=ids):
                    for call_id in ids:
                        if (ha_name := calls_in_turn.pop(call_id, "")) != "":
                            yield {
                                "role": "tool_result",
                                "tool_call_id": call_id,
                                "tool_name": ha_name,
                                "result": llm.ToolResult({"error": "Cancelled"}, error=True),
                            }
                            message_open = False
                    for delta in flush():
                        yield delta
                case Interrupted():
                    state.interrupted = True
                    if not self._followups:
                        completed = True
                case TurnComplete(reason=reason, waiting_for_input=waiting):
                    state.waiting_for_input = waiting or reason == NEED_MORE_INPUT
                    if self._followups and self._output_since_outcome:
                        self._followups -= 1
                    completed = True
                case _:
                    pass


# ------------------------------------------------------------------------------------------------
# Manager
# ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SessionFactory:
    """What a manager needs to build sessions for one agent."""

    endpoint: Endpoint
    usage_signal_id: str
    idle_timeout: float


class SessionManager:
    """The Live sessions of one agent, one per conversation_id."""

    def __init__(
        self,
        hass: HomeAssistant,
        store: HandleStore,
        factory: SessionFactory,
        on_auth_error: Callable[[], None],
    ) -> None:
        """Create an empty manager."""
        self.hass = hass
        self.store = store
        self.factory = factory
        self._on_auth_error = on_auth_error
        self.sessions: dict[str, ConversationSession] = {}
        self._idle: dict[str, CALLBACK_TYPE] = {}
        self._creating: dict[str, asyncio.Lock] = {}

    def _key(self, conversation_id: str) -> str:
        return f"{self.factory.usage_signal_id}:{conversation_id}"

    async def async_get(
        self, conversation_id: str, setup: SetupConfig, tools: ToolSet
    ) -> ConversationSession:
        """The conversation's session, opened (resuming a stored handle) if needed."""
        lock = self._creating.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            session = self.sessions.get(conversation_id)
            if session is not None and not session.closed and not session.live.closed:
                session.tools.llm_api = tools.llm_api  # this turn's LLM context
                self._cancel_idle(conversation_id)
                return session
            session = await self._async_open(conversation_id, setup, tools)
            self.sessions[conversation_id] = session
            return session

    async def _async_open(
        self, conversation_id: str, setup: SetupConfig, tools: ToolSet
    ) -> ConversationSession:
        key = self._key(conversation_id)
        handle = self.store.get(key)
        while True:
            cfg = replace(setup, functions=tools.declarations, resumption_handle=handle)
            live = LiveSession(
                self.factory.endpoint,
                cfg,
                on_handle=lambda h: self.store.set(key, h),
            )
            session = ConversationSession(
                self.hass,
                key=key,
                live=live,
                tools=tools,
                usage_signal=SIGNAL_USAGE.format(self.factory.usage_signal_id),
                on_fatal=self._on_fatal,
            )
            try:
                await session.async_start()
            except InvalidArgumentError:
                if handle is None:
                    raise
                LOGGER.info("Stored session handle for %s refused; starting afresh", key)
                self.store.discard(key)
                handle = None
                continue
            if handle:
                LOGGER.debug("Resumed Live session for %s from a stored handle", key)
            return session

    def _on_fatal(self, session: ConversationSession, err: LiveError) -> None:
        if isinstance(err, AuthenticationError):
            self._on_auth_error()
        self.hass.async_create_task(self._async_drop(session))

    async def _async_drop(self, session: ConversationSession) -> None:
        for cid, item in list(self.sessions.items()):
            if item is session:
                del self.sessions[cid]
        await session.async_close()

    async def async_close(self, conversation_id: str) -> None:
        """Close one conversation's session now."""
        self._cancel_idle(conversation_id)
        if (session := self.sessions.pop(conversation_id, None)) is not None:
            await session.async_close()

    def touch(self, conversation_id: str) -> None:
        """A turn ended: close the session after the idle time unless used again."""
        self._cancel_idle(conversation_id)

        @callback
        def _expire(_now: Any) -> None:
            self._idle.pop(conversation_id, None)
            if (session := self.sessions.pop(conversation_id, None)) is not None:
                LOGGER.debug("Closing idle Live session %s", session.key)
                self.hass.async_create_background_task(
                    session.async_close(), name="gemini_live_idle_close"
                )

        self._idle[conversation_id] = async_call_later(
            self.hass, self.factory.idle_timeout, _expire
        )

    def _cancel_idle(self, conversation_id: str) -> None:
        if (cancel := self._idle.pop(conversation_id, None)) is not None:
            cancel()

    async def async_close_all(self) -> None:
        """Close every session (unload)."""
        for cancel in self._idle.values():
            cancel()
        self._idle.clear()
        sessions = list(self.sessions.values())
        self.sessions.clear()
        for session in sessions:
            await session.async_close()


def trim_system_prompt(prompt: str, context_window: int) -> str:
    """Keep the system instruction within a quarter of the model's context window.

    Policy: the head of the prompt (persona, instructions, API prompt) is kept; lines are dropped
    from the end (where HA lists the home's entities) until it fits, and a note says so.
    """
    budget_chars = context_window // 4 * CHARS_PER_TOKEN
    if len(prompt) <= budget_chars:
        return prompt
    LOGGER.warning(
        "The system prompt (~%d tokens) exceeds the budget of %d tokens for this model; "
        "trimming the home context at its end. Expose fewer entities to Assist to avoid this",
        len(prompt) // CHARS_PER_TOKEN,
        budget_chars // CHARS_PER_TOKEN,
    )
    note = "\n(The list above was shortened to fit.)"
    cut = prompt[: budget_chars - len(note)]
    if "\n" in cut:
        cut = cut[: cut.rfind("\n")]
    return cut + note
