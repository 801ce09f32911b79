"""The sans-I/O protocol state machine, fed with bytes: no sockets, no event loop."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from custom_components.gemini_live.live import messages as m
from custom_components.gemini_live.live.errors import (
    AuthenticationError,
    CannotConnectError,
    ConnectionLostError,
    InvalidArgumentError,
    ServerError,
    SessionClosedError,
)
from custom_components.gemini_live.live.protocol import (
    CauseKind,
    CloseConnection,
    HandleUpdated,
    LiveProtocol,
    OpenConnection,
    ProtocolEvent,
    Reconnected,
    SessionEnded,
    TurnEnded,
    TurnLost,
    TurnStarted,
)

MODEL_NB = "gemini-3.8-live"  # NON_BLOCKING by default
MODEL_SYNC = "gemini-3.1-flash-live-preview"  # BLOCKING only
LIGHT = m.FunctionDeclaration("HassTurnOn", "Turns on a device", None, m.Behavior.BLOCKING)
LIGHT_NB = m.FunctionDeclaration("HassTurnOn", "Turns on a device", None, m.Behavior.NON_BLOCKING)


def frame(msg: dict[str, Any]) -> bytes:
    """A server frame as the real server sends it: pretty JSON in a binary frame."""
    return orjson.dumps(msg, option=orjson.OPT_INDENT_2) + b"\n"


def text(t: str) -> bytes:
    return frame({"serverContent": {"modelTurn": {"parts": [{"text": t}]}}})


def transcript(t: str) -> bytes:
    return frame({"serverContent": {"outputTranscription": {"text": t}}})


def call(call_id: str, fn: str = "HassTurnOn", **args: Any) -> bytes:
    return frame({"toolCall": {"functionCalls": [{"id": call_id, "name": fn, "args": args}]}})


GEN_DONE = frame({"serverContent": {"generationComplete": True}})
TURN_DONE = frame({"serverContent": {"turnComplete": True}})
INTERRUPTED = frame({"serverContent": {"interrupted": True}})


def handle(h: str, index: int | None = None) -> bytes:
    body: dict[str, Any] = {"newHandle": h, "resumable": True}
    if index is not None:
        body["lastConsumedClientMessageIndex"] = str(index)
    return frame({"sessionResumptionUpdate": body})


class Wire:
    """Plays the driver: opens connections when told and records what is written."""

    def __init__(self, setup: m.SetupConfig, **kw: Any) -> None:
        self.proto = LiveProtocol(setup, **kw)
        self.events: list[ProtocolEvent] = []
        self.sent: dict[int, list[dict[str, Any]]] = {}
        self.opened: list[OpenConnection] = []
        self.closed: list[int] = []
        self.gen = 0

    def pump(self) -> list[ProtocolEvent]:
        new = []
        for event in self.proto.events():
            if isinstance(event, OpenConnection):
                self.opened.append(event)
            elif isinstance(event, CloseConnection):
                self.closed.append(event.gen)
            else:
                new.append(event)
        pending = self.proto.has_data_to_send
        frames = self.proto.data_to_send()
        assert pending == bool(frames)
        assert not self.proto.has_data_to_send
        for gen, data in frames:
            self.sent.setdefault(gen, []).append(orjson.loads(data))
        self.events += new
        return new

    def connect(self, *, complete: bool = True) -> int:
        """Open the connection the protocol asked for (answering setupComplete)."""
        self.pump()
        request = self.opened[-1]
        setup = orjson.loads(self.proto.setup_frame(request.gen))
        self.sent.setdefault(request.gen, []).append(setup)
        if complete:
            self.proto.receive(request.gen, frame({"setupComplete": {}}))
        self.gen = request.gen
        self.pump()
        return request.gen

    def recv(self, *frames: bytes, gen: int | None = None) -> list[ProtocolEvent]:
        for data in frames:
            self.proto.receive(self.gen if gen is None else gen, data)
        return self.pump()

    def drop(self, error: Exception | None = None) -> list[ProtocolEvent]:
        self.proto.connection_lost(self.gen, error or ConnectionLostError("dropped", code=1006))
        return self.pump()

    def client(self, gen: int | None = None) -> list[dict[str, Any]]:
        """Client messages written on a connection, the setup excluded."""
        return list(self.sent.get(self.gen if gen is None else gen, []))[1:]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def setup(model: str = MODEL_SYNC, **kw: Any) -> m.SetupConfig:
    return m.SetupConfig(
        model=model, functions=(LIGHT,) if model == MODEL_SYNC else (LIGHT_NB,), **kw
    )


@pytest.fixture
def wire() -> Wire:
    w = Wire(setup())
    w.proto.start()
    w.connect()
    return w


def test_text_turn_is_bracketed_and_attributed(wire: Wire) -> None:
    request = wire.proto.send_text("hello")
    wire.pump()
    assert wire.client() == [m.client_content("hello")]
    events = wire.recv(text("Hi"), text(" there"), GEN_DONE, TURN_DONE)
    assert [type(e).__name__ for e in events] == [
        "TurnStarted",
        "TextOut",
        "TextOut",
        "GenerationComplete",
        "TurnEnded",
    ]
    started, ended = events[0], events[-1]
    assert isinstance(started, TurnStarted)
    assert isinstance(ended, TurnEnded)
    assert started.cause.kind is CauseKind.REQUEST
    assert started.cause.request == request
    assert ended.turn == started.turn
    assert not ended.interrupted


def test_messages_before_setup_complete_are_written_once_it_arrives() -> None:
    wire = Wire(setup())
    wire.proto.start()
    gen = wire.connect(complete=False)
    wire.proto.send_text("early")
    wire.pump()
    assert wire.client(gen) == []
    wire.recv(frame({"setupComplete": {}}))
    assert wire.client(gen) == [m.client_content("early")]
    assert not wire.of(Reconnected)  # the first connection is not a reconnect


def test_drop_after_blocking_call_never_replays_the_request(wire: Wire) -> None:
    """Issue 9 #1: the request whose call arrived is recapped, never sent again."""
    request = wire.proto.send_text("turn on the kitchen light")
    wire.pump()
    events = wire.recv(text("Turning it on."), call("c1", name="kitchen light"))
    (tool_call,) = [e for e in events if isinstance(e, m.ToolCall)]
    assert [c.id for c in tool_call.calls] == ["c1"]
    # Home Assistant runs it and answers; then the connection drops before turnComplete.
    wire.proto.send_tool_results([m.FunctionResult("c1", "HassTurnOn", {"success": True})])
    wire.pump()
    lost = wire.drop()
    assert [type(e) for e in lost] == [TurnLost]
    gen2 = wire.connect()
    written = wire.client(gen2)
    # Not the request, not the tool response for an id this state never saw: one recap.
    assert m.client_content("turn on the kitchen light") not in written
    assert not [msg for msg in written if "toolResponse" in msg]
    (recap,) = written
    note = recap["clientContent"]["turns"][0]["parts"][0]["text"]
    assert "turn on the kitchen light" in note
    assert 'HassTurnOn({"name":"kitchen light"})' in note
    assert '{"success":true}' in note
    assert "Do not call" in note
    assert recap["clientContent"]["turnComplete"] is True
    assert wire.of(Reconnected)[-1].recap
    # The model answers on the new connection: the same request, a new turn.
    events = wire.recv(text("Done."), GEN_DONE, TURN_DONE)
    started = next(e for e in events if isinstance(e, TurnStarted))
    assert started.cause.request == request


def test_repeated_call_after_reconnect_is_answered_from_the_first_run(wire: Wire) -> None:
    wire.proto.send_text("turn on the kitchen light")
    wire.pump()
    wire.recv(call("c1", name="kitchen light"))
    wire.proto.send_tool_results([m.FunctionResult("c1", "HassTurnOn", {"success": True})])
    wire.drop()
    wire.connect()
    sent_before = len(wire.client())
    # The model ignores the recap and calls the very same function again.
    events = wire.recv(call("c2", name="kitchen light"))
    assert not [e for e in events if isinstance(e, m.ToolCall)]  # never reaches HA
    (answer,) = wire.client()[sent_before:]
    response = answer["toolResponse"]["functionResponses"][0]
    assert response["id"] == "c2"
    assert response["response"] == {"success": True}
    # A different call for the same request is a new action: it reaches HA.
    events = wire.recv(call("c3", name="living room"))
    assert [c.id for e in events if isinstance(e, m.ToolCall) for c in e.calls] == ["c3"]


def test_repeat_of_a_call_still_running_is_answered_when_it_finishes(wire: Wire) -> None:
    wire.proto.send_text("turn on the kitchen light")
    wire.pump()
    wire.recv(call("c1", name="kitchen light"))
    wire.drop()
    wire.connect()
    written = wire.client()
    assert "is running" in written[0]["clientContent"]["turns"][0]["parts"][0]["text"]
    assert not [e for e in wire.recv(call("c2", name="kitchen light")) if isinstance(e, m.ToolCall)]
    wire.proto.send_tool_results([m.FunctionResult("c1", "HassTurnOn", {"success": True})])
    wire.pump()
    later = wire.client()[len(written) :]
    ids = [
        r["id"]
        for msg in later
        if "toolResponse" in msg
        for r in msg["toolResponse"]["functionResponses"]
    ]
    assert ids == ["c2"]  # c1 is unknown to this state: its result went as a note
    notes = [msg for msg in later if "clientContent" in msg]
    assert len(notes) == 1
    assert "carried out once" in notes[0]["clientContent"]["turns"][0]["parts"][0]["text"]


def test_drop_mid_reply_withdraws_the_turn_and_replays_a_request_without_calls(wire: Wire) -> None:
    """Issue 9 #2: the dead generation is lost; the request (no calls) is sent again."""
    request = wire.proto.send_text("what did I say")
    wire.pump()
    wire.recv(text("You"))
    lost = wire.drop()
    assert isinstance(lost[0], TurnLost)
    assert lost[0].cause.request == request
    gen2 = wire.connect()
    assert wire.client(gen2) == [m.client_content("what did I say")]
    events = wire.recv(text("You said: hi"), GEN_DONE, TURN_DONE)
    assert next(e for e in events if isinstance(e, TurnStarted)).cause.request == request


def test_generation_complete_before_the_drop_keeps_the_answer(wire: Wire) -> None:
    wire.proto.send_text("hello")
    wire.pump()
    wire.recv(text("Hi there."), GEN_DONE)
    events = wire.drop()
    assert [type(e) for e in events] == [TurnEnded]  # it stands; nothing is withdrawn
    gen2 = wire.connect()
    (history,) = wire.client(gen2)
    note = history["clientContent"]
    assert note["turnComplete"] is False  # the model is not asked to answer again
    assert "Hi there." in note["turns"][0]["parts"][0]["text"]


def test_non_blocking_result_for_a_call_in_the_resumed_state_is_a_tool_response() -> None:
    wire = Wire(setup(MODEL_NB))
    wire.proto.start()
    wire.connect()
    wire.proto.send_text("turn on the light")
    wire.pump()
    wire.recv(call("c1"), text("Working on it."), GEN_DONE, TURN_DONE, handle("h1"))
    wire.drop()
    gen2 = wire.connect()
    assert wire.client(gen2) == []  # the handle covers the request and the pending call
    assert orjson.loads(wire.proto.setup_frame(gen2))["setup"]["sessionResumption"] == {
        "handle": "h1"
    }
    wire.proto.send_tool_results(
        [m.FunctionResult("c1", "HassTurnOn", {"success": True}, m.Scheduling.SILENT)]
    )
    wire.pump()
    (msg,) = wire.client(gen2)
    assert msg["toolResponse"]["functionResponses"][0]["id"] == "c1"


def test_tail_of_a_reply_after_the_result_is_not_the_follow_up() -> None:
    """Issue 9 #3: only the next turn is the follow-up, whatever the arrival order."""
    wire = Wire(setup(MODEL_NB))
    wire.proto.start()
    wire.connect()
    request = wire.proto.send_text("turn on the light")
    wire.pump()
    wire.recv(call("c1"), text("Okay,"))
    wire.proto.send_tool_results(
        [m.FunctionResult("c1", "HassTurnOn", {"error": "no"}, m.Scheduling.INTERRUPT)]
    )
    wire.pump()
    wire.recv(text(" working on it."), GEN_DONE, TURN_DONE)  # the tail of the first turn
    events = wire.recv(text("Sorry, I couldn't."), GEN_DONE, TURN_DONE)
    starts = [e for e in wire.events if isinstance(e, TurnStarted)]
    assert [s.cause.kind for s in starts] == [CauseKind.REQUEST, CauseKind.FOLLOWUP]
    assert starts[1].cause.request == request
    assert isinstance(events[-1], TurnEnded)
    assert events[-1].cause.kind is CauseKind.FOLLOWUP


def test_interrupted_turn_ends_interrupted(wire: Wire) -> None:
    wire.proto.send_text("tell me a story")
    wire.pump()
    events = wire.recv(text("Once"), INTERRUPTED, TURN_DONE)
    assert [type(e).__name__ for e in events][-2:] == ["Interrupted", "TurnEnded"]
    assert events[-1].interrupted  # type: ignore[union-attr]


def test_go_away_rolls_over_at_the_next_boundary(wire: Wire) -> None:
    wire.proto.send_text("hello")
    wire.pump()
    old = wire.gen
    wire.recv(text("Hi"), frame({"goAway": {"timeLeft": "50s"}}))
    assert len(wire.opened) == 1  # mid-turn: not yet
    wire.recv(GEN_DONE, TURN_DONE, handle("h1"))
    assert wire.opened[-1].rollover
    new = wire.connect()
    assert old in wire.closed
    assert new != old
    assert wire.of(Reconnected)[-1].resumed
    wire.proto.send_text("again")
    wire.pump()
    assert wire.client(new) == [m.client_content("again")]
    # Late frames of the retired connection are ignored.
    assert wire.recv(text("stale"), gen=old) == []


def test_rollover_connection_is_dropped_when_a_turn_starts_while_it_opens(wire: Wire) -> None:
    wire.recv(frame({"goAway": {"timeLeft": "50s"}}), handle("h1"))
    rollover = wire.opened[-1]
    assert rollover.rollover
    old = wire.gen
    wire.proto.send_text("quick question")
    wire.pump()
    wire.proto.receive(rollover.gen, frame({"setupComplete": {}}))
    wire.pump()
    assert rollover.gen in wire.closed
    assert old not in wire.closed
    wire.recv(text("Yes."), GEN_DONE, TURN_DONE, handle("h2"))
    assert wire.opened[-1].rollover
    assert wire.opened[-1].gen != rollover.gen


def test_fatal_close_ends_the_session_without_retrying(wire: Wire) -> None:
    events = wire.drop(AuthenticationError("API key not valid", code=1007))
    assert isinstance(events[-1], SessionEnded)
    assert isinstance(events[-1].error, AuthenticationError)
    assert len(wire.opened) == 1
    with pytest.raises(AuthenticationError):
        wire.proto.send_text("hello")


def test_reconnect_backs_off_then_gives_up() -> None:
    wire = Wire(setup(), backoff=(0.0, 0.5))
    wire.proto.start()
    wire.connect()
    wire.drop(ServerError("Internal error", code=1011))
    assert [o.delay for o in wire.opened] == [0.0, 0.0]
    wire.proto.connection_lost(wire.opened[-1].gen, CannotConnectError("refused"))
    wire.pump()
    assert wire.opened[-1].delay == 0.5
    wire.proto.connection_lost(wire.opened[-1].gen, CannotConnectError("refused"))
    events = wire.pump()
    assert isinstance(events[-1], SessionEnded)
    assert isinstance(events[-1].error, CannotConnectError)


def test_refused_handle_starts_a_fresh_session() -> None:
    wire = Wire(setup(resumption_handle="old"))
    wire.proto.start()
    wire.pump()
    first = wire.opened[-1]
    assert orjson.loads(wire.proto.setup_frame(first.gen))["setup"]["sessionResumption"] == {
        "handle": "old"
    }
    wire.proto.connection_lost(first.gen, InvalidArgumentError("bad handle", code=1007))
    events = wire.pump()
    assert HandleUpdated(None) in events
    second = wire.opened[-1]
    assert orjson.loads(wire.proto.setup_frame(second.gen))["setup"]["sessionResumption"] == {}


def test_close_ends_the_turn_and_refuses_more(wire: Wire) -> None:
    wire.proto.send_text("hello")
    wire.pump()
    wire.recv(text("Hi"))
    wire.proto.close()
    events = wire.pump()
    assert [type(e) for e in events] == [TurnLost, SessionEnded]
    assert isinstance(events[-1].error, SessionClosedError)  # type: ignore[union-attr]
    assert wire.gen in wire.closed
    with pytest.raises(SessionClosedError):
        wire.proto.send_audio(b"\0\0" * 160)


def test_replay_audio_is_bounded_in_seconds_with_constant_work(wire: Wire) -> None:
    wire.proto.begin_speech()
    chunk = b"\0\0" * 1600  # 100 ms at 16 kHz
    for _ in range(400):  # 40 s
        wire.proto.send_audio(chunk)
    wire.pump()
    assert wire.proto.replay_audio_s == pytest.approx(30.0)
    assert wire.proto.unacknowledged == 300  # exactly 30 s of it is kept, in 100 ms messages


def test_last_consumed_index_acknowledges_exactly(wire: Wire) -> None:
    for word in ("one", "two", "three"):
        wire.proto.send_realtime_text(word)
    wire.pump()
    wire.recv(handle("h1", index=1))
    assert wire.proto.unacknowledged == 1
    wire.drop()
    gen2 = wire.connect()
    assert wire.client(gen2) == [m.realtime_text("three")]


def test_without_resumption_turn_complete_acknowledges() -> None:
    wire = Wire(setup(session_resumption=False))
    wire.proto.start()
    wire.connect()
    wire.proto.send_text("hello")
    wire.pump()
    wire.recv(text("Hi"), GEN_DONE, TURN_DONE)
    assert wire.proto.unacknowledged == 0


def test_cancelled_call_is_never_answered() -> None:
    wire = Wire(setup(MODEL_NB))
    wire.proto.start()
    wire.connect()
    wire.proto.send_text("turn on the light")
    wire.pump()
    wire.recv(call("c1"), frame({"toolCallCancellation": {"ids": ["c1"]}}))
    wire.proto.send_tool_results([m.FunctionResult("c1", "HassTurnOn", {"success": True})])
    wire.pump()
    assert not [msg for msg in wire.client() if "toolResponse" in msg]


def test_scheduling_is_dropped_for_a_model_without_async_calls(wire: Wire) -> None:
    wire.proto.send_text("turn on the light")
    wire.pump()
    wire.recv(call("c1"))
    wire.proto.send_tool_results(
        [m.FunctionResult("c1", "HassTurnOn", {"success": True}, m.Scheduling.SILENT)]
    )
    wire.pump()
    response = wire.client()[-1]["toolResponse"]["functionResponses"][0]
    assert "scheduling" not in response
    assert "scheduling" not in response["response"]


def test_malformed_frame_is_skipped(wire: Wire, caplog: pytest.LogCaptureFixture) -> None:
    wire.proto.send_text("hello")
    wire.pump()
    assert wire.recv(b"{not json") == []
    assert "malformed" in caplog.text
    assert [type(e).__name__ for e in wire.recv(text("Hi"))] == ["TurnStarted", "TextOut"]


def test_spoken_request_takes_its_input_transcription(wire: Wire) -> None:
    request = wire.proto.begin_speech()
    wire.proto.send_audio(b"\0\0" * 160)
    wire.pump()
    wire.recv(
        frame({"serverContent": {"inputTranscription": {"text": "turn on", "finished": False}}})
    )
    wire.recv(call("c1"))
    wire.recv(
        frame({"serverContent": {"inputTranscription": {"text": " the light", "finished": True}}})
    )
    wire.drop()
    gen2 = wire.connect()
    (recap,) = wire.client(gen2)
    assert '"turn on the light"' in recap["clientContent"]["turns"][0]["parts"][0]["text"]
    assert not [msg for msg in wire.client(gen2) if "realtimeInput" in msg]  # audio not resent
    assert request == 1
