"""The unmodified google-genai SDK against the emulator (its acceptance test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
import warnings

from google import genai
from google.genai import errors as genai_errors, live as genai_live, types
import pytest

from live_emulator import Fault, LiveEmulator

from .conftest import API_KEY, MODEL_25, MODEL_31, MODEL_38, MODEL_38X, silence, tone

TURN_ON = types.FunctionDeclaration(
    name="HassTurnOn",
    description="Turns on a device",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"name": types.Schema(type=types.Type.STRING)},
    ),
)


@pytest.fixture(autouse=True)
def plain_ws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The SDK always uses wss://; point it at the plain ws:// emulator."""
    original = genai_live.ws_connect

    def patched(uri: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("ssl", None)
        return original(uri.replace("wss://", "ws://", 1), *args, **kwargs)

    monkeypatch.setattr(genai_live, "ws_connect", patched)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", genai_errors.ExperimentalWarning)
        yield


_CLIENTS: list[genai.Client] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close the SDK clients' HTTP sessions (no lingering timers)."""
    yield
    while _CLIENTS:
        await _CLIENTS.pop().aio.aclose()


def client_for(emu: LiveEmulator, *, key: str = API_KEY, version: str = "v1beta") -> genai.Client:
    client = genai.Client(
        api_key=key, http_options={"base_url": emu.http_url, "api_version": version}
    )
    _CLIENTS.append(client)
    return client


async def collect_turn(session: genai_live.AsyncSession) -> list[types.LiveServerMessage]:
    out: list[types.LiveServerMessage] = []
    async for msg in session.receive():
        out.append(msg)
    return out


def transcript(msgs: list[types.LiveServerMessage]) -> str:
    return "".join(
        m.server_content.output_transcription.text or ""
        for m in msgs
        if m.server_content and m.server_content.output_transcription
    )


def audio_bytes(msgs: list[types.LiveServerMessage]) -> bytes:
    out = b""
    for m in msgs:
        if m.server_content and m.server_content.model_turn:
            for part in m.server_content.model_turn.parts or []:
                if part.inline_data and part.inline_data.data:
                    assert part.inline_data.mime_type == "audio/pcm;rate=24000"
                    out += part.inline_data.data
    return out


def config(**kwargs: Any) -> types.LiveConnectConfig:
    base: dict[str, Any] = {
        "response_modalities": [types.Modality.AUDIO],
        "output_audio_transcription": types.AudioTranscriptionConfig(),
    }
    base.update(kwargs)
    return types.LiveConnectConfig(**base)


@pytest.fixture
async def slow_emu(make_emulator: Callable[..., LiveEmulator]) -> AsyncIterator[LiveEmulator]:
    """Replies streamed at real time (short speech) so the client can act mid-reply."""
    async with make_emulator(pace=1.0, ms_per_char=25) as emulator:
        yield emulator


async def test_text_turn(emu: LiveEmulator) -> None:
    client = client_for(emu)
    async with client.aio.live.connect(model=MODEL_38, config=config()) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="Hello there")]),
            turn_complete=True,
        )
        msgs = await collect_turn(session)
    assert transcript(msgs) == "Hello! How can I help you today?"
    pcm = audio_bytes(msgs)
    assert len(pcm) > 24000  # over half a second of 24 kHz PCM16
    assert any(pcm[i] for i in range(0, len(pcm), 97))
    kinds = [
        "generation" if m.server_content and m.server_content.generation_complete else None
        for m in msgs
    ]
    assert "generation" in kinds
    last = msgs[-1]
    assert last.server_content is not None
    assert last.server_content.turn_complete
    assert last.usage_metadata is not None
    assert last.usage_metadata.total_token_count
    record = emu.connections[0]
    assert record.model == MODEL_38
    assert record.setup is not None
    assert record.setup["model"] == f"models/{MODEL_38}"


async def test_text_modality_turn(emu: LiveEmulator) -> None:
    client = client_for(emu)
    cfg = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    async with client.aio.live.connect(model=MODEL_25, config=cfg) as session:
        await session.send_realtime_input(text="Are you there Gemini?")
        msgs = await collect_turn(session)
    text = "".join(m.text or "" for m in msgs if m.text)
    assert text == 'You said: "Are you there Gemini?". How can I help with that?'
    assert audio_bytes(msgs) == b""


async def test_audio_turn_with_both_transcriptions(emu: LiveEmulator) -> None:
    emu.queue_transcripts("what time is it")
    client = client_for(emu)
    cfg = config(input_audio_transcription=types.AudioTranscriptionConfig())
    async with client.aio.live.connect(model=MODEL_38, config=cfg) as session:
        pcm = tone(400) + silence(700)
        for i in range(0, len(pcm), 3200):
            await session.send_realtime_input(
                audio=types.Blob(data=pcm[i : i + 3200], mime_type="audio/pcm;rate=16000")
            )
        msgs = await collect_turn(session)
    heard = [
        m.server_content.input_transcription
        for m in msgs
        if m.server_content and m.server_content.input_transcription
    ]
    assert "".join(t.text or "" for t in heard) == "what time is it"
    assert heard[-1].finished
    assert transcript(msgs) == 'You said: "what time is it". How can I help with that?'
    assert audio_bytes(msgs)
    assert emu.connections[0].utterances[0]["transcript"] == "what time is it"


async def test_blocking_tool_call(emu: LiveEmulator) -> None:
    client = client_for(emu)
    cfg = config(tools=[types.Tool(function_declarations=[TURN_ON])])
    async with client.aio.live.connect(model=MODEL_25, config=cfg) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="turn on the kitchen light")])
        )
        calls: list[types.FunctionCall] = []
        msgs: list[types.LiveServerMessage] = []
        async for msg in session.receive():
            msgs.append(msg)
            if msg.tool_call:
                calls.extend(msg.tool_call.function_calls or [])
                await session.send_tool_response(
                    function_responses=[
                        types.FunctionResponse(id=c.id, name=c.name, response={"success": True})
                        for c in calls
                    ]
                )
    assert len(calls) == 1
    assert calls[0].name == "HassTurnOn"
    assert calls[0].args == {"name": "kitchen light"}
    assert calls[0].id
    assert calls[0].id.startswith("function-call-")
    assert transcript(msgs) == "Done, the kitchen light is now on."
    record = emu.connections[0].tool_responses[0]
    assert (record.behavior, record.scheduling, record.status) == ("BLOCKING", None, "applied")


async def _non_blocking_call(session: genai_live.AsyncSession) -> types.FunctionCall:
    await session.send_client_content(
        turns=types.Content(role="user", parts=[types.Part(text="turn on the kitchen light")])
    )
    call: types.FunctionCall | None = None
    msgs = []
    async for msg in session.receive():
        msgs.append(msg)
        if msg.tool_call:
            call = (msg.tool_call.function_calls or [])[0]
    assert transcript(msgs) == "Okay, working on it."
    assert call is not None
    return call


async def test_non_blocking_silent(emu: LiveEmulator) -> None:
    client = client_for(emu)
    cfg = config(tools=[types.Tool(function_declarations=[TURN_ON])])
    async with client.aio.live.connect(model=MODEL_38, config=cfg) as session:
        call = await _non_blocking_call(session)
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(
                    id=call.id,
                    name=call.name,
                    response={"success": True},
                    scheduling=types.FunctionResponseScheduling.SILENT,
                )
            ]
        )
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="Hello again")])
        )
        msgs = await collect_turn(session)
    # Nothing was said about the result: the next turn is the reply to "Hello again".
    assert transcript(msgs) == "Hello! How can I help you today?"
    rec = emu.connections[0].tool_responses[0]
    assert (rec.behavior, rec.scheduling) == ("NON_BLOCKING", "SILENT")


async def test_non_blocking_when_idle(emu: LiveEmulator) -> None:
    client = client_for(emu)
    cfg = config(tools=[types.Tool(function_declarations=[TURN_ON])])
    async with client.aio.live.connect(model=MODEL_38, config=cfg) as session:
        call = await _non_blocking_call(session)
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(
                    id=call.id,
                    name=call.name,
                    response={"error": "device unavailable"},
                    scheduling=types.FunctionResponseScheduling.WHEN_IDLE,
                )
            ]
        )
        msgs = await collect_turn(session)
    assert transcript(msgs) == "Sorry, I couldn't turn on the kitchen light: device unavailable."
    assert emu.connections[0].tool_responses[0].scheduling == "WHEN_IDLE"


async def test_non_blocking_default_scheduling_is_when_idle(emu: LiveEmulator) -> None:
    client = client_for(emu)
    cfg = config(tools=[types.Tool(function_declarations=[TURN_ON])])
    async with client.aio.live.connect(model=MODEL_38, config=cfg) as session:
        call = await _non_blocking_call(session)
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"success": True})
            ]
        )
        msgs = await collect_turn(session)
    assert transcript(msgs) == "Done, the kitchen light is now on."
    assert emu.connections[0].tool_responses[0].scheduling == "WHEN_IDLE"


async def test_non_blocking_interrupt(slow_emu: LiveEmulator) -> None:
    client = client_for(slow_emu)
    cfg = config(tools=[types.Tool(function_declarations=[TURN_ON])])
    async with client.aio.live.connect(model=MODEL_38, config=cfg) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="turn on the kitchen light")])
        )
        first: list[types.LiveServerMessage] = []
        async for msg in session.receive():
            first.append(msg)
            if msg.tool_call:
                call = (msg.tool_call.function_calls or [])[0]
                # Answer while "Okay, working on it." is still being spoken.
                await session.send_tool_response(
                    function_responses=[
                        types.FunctionResponse(
                            id=call.id,
                            name=call.name,
                            response={"success": True},
                            scheduling=types.FunctionResponseScheduling.INTERRUPT,
                        )
                    ]
                )
        second = await collect_turn(session)
    assert any(m.server_content and m.server_content.interrupted for m in first)
    assert not any(m.server_content and m.server_content.generation_complete for m in first)
    assert transcript(second) == "Done, the kitchen light is now on."
    assert slow_emu.connections[0].tool_responses[0].scheduling == "INTERRUPT"


async def test_interruption_cancels_pending_non_blocking_call(slow_emu: LiveEmulator) -> None:
    client = client_for(slow_emu)
    cfg = config(tools=[types.Tool(function_declarations=[TURN_ON])])
    async with client.aio.live.connect(model=MODEL_38, config=cfg) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="turn on the kitchen light")])
        )
        first: list[types.LiveServerMessage] = []
        async for msg in session.receive():
            first.append(msg)
            if msg.tool_call:
                # The user starts speaking over the reply.
                await session.send_realtime_input(
                    audio=types.Blob(data=tone(200), mime_type="audio/pcm;rate=16000")
                )
        call_id = next(m.tool_call for m in first if m.tool_call).function_calls[0].id  # type: ignore[union-attr,index]
        cancellation = await anext(session.receive())
        assert cancellation.tool_call_cancellation is not None
        assert cancellation.tool_call_cancellation.ids == [call_id]
        await session.send_realtime_input(
            audio=types.Blob(data=silence(800), mime_type="audio/pcm;rate=16000")
        )
        reply = await collect_turn(session)
    assert any(m.server_content and m.server_content.interrupted for m in first)
    assert transcript(reply) == "Hello! How can I help you today?"


async def test_go_away_then_resume_restores_history(emu: LiveEmulator) -> None:
    client = client_for(emu)
    cfg = config(session_resumption=types.SessionResumptionConfig())
    handle = None
    async with client.aio.live.connect(model=MODEL_38, config=cfg) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="Remember the word banana")])
        )
        await collect_turn(session)
        update = await anext(session.receive())
        assert update.session_resumption_update is not None
        assert update.session_resumption_update.resumable
        handle = update.session_resumption_update.new_handle
        emu.inject(Fault(kind="go_away", time_left_s=0.5))
        go_away = await anext(session.receive())
        assert go_away.go_away is not None
        assert go_away.go_away.time_left == "0.500s"
    assert handle
    resumed = config(session_resumption=types.SessionResumptionConfig(handle=handle))
    async with client.aio.live.connect(model=MODEL_38, config=resumed) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="What did I just ask?")])
        )
        msgs = await collect_turn(session)
    assert transcript(msgs) == 'You asked: "Remember the word banana"'
    assert emu.connections[1].resumed_from == handle


async def test_go_away_connection_end(emu: LiveEmulator) -> None:
    client = client_for(emu)
    async with client.aio.live.connect(model=MODEL_38, config=config()) as session:
        emu.inject(Fault(kind="go_away", time_left_s=0.05))
        msg = await anext(session.receive())
        assert msg.go_away is not None
        with pytest.raises(genai_errors.APIError) as err:
            await anext(session.receive())
    assert err.value.code == 1011
    assert emu.connections[0].close_reason == "Deadline expired before operation could complete."


async def test_ephemeral_token_and_constrained_session(emu: LiveEmulator) -> None:
    admin = client_for(emu, version="v1alpha")
    token = await admin.aio.auth_tokens.create(
        config=types.CreateAuthTokenConfig(
            uses=1,
            expire_time=datetime.now(UTC) + timedelta(minutes=10),
            live_connect_constraints=types.LiveConnectConstraints(
                model=MODEL_38,
                config=types.LiveConnectConfig(
                    response_modalities=[types.Modality.AUDIO],
                    output_audio_transcription=types.AudioTranscriptionConfig(),
                ),
            ),
        )
    )
    assert token.name
    assert token.name.startswith("auth_tokens/")
    assert emu.tokens[token.name].uses_left == 1
    user = client_for(emu, key=token.name, version="v1alpha")
    # The client asks for no transcription; the token's locked setup wins.
    plain = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    async with user.aio.live.connect(model=MODEL_38, config=plain) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="Hello")])
        )
        msgs = await collect_turn(session)
    assert transcript(msgs) == "Hello! How can I help you today?"
    record = emu.connections[0]
    assert record.method == "BidiGenerateContentConstrained"
    assert record.token == token.name
    assert record.effective_setup is not None
    assert "outputAudioTranscription" in record.effective_setup
    assert emu.tokens[token.name].uses_left == 0
    with pytest.raises(genai_errors.APIError) as err:
        async with user.aio.live.connect(model=MODEL_38, config=plain):
            pass
    assert err.value.code == 1007


async def test_bad_api_key_sdk_error(emu: LiveEmulator) -> None:
    client = client_for(emu, key="wrong")
    with pytest.raises(genai_errors.APIError) as err:
        async with client.aio.live.connect(model=MODEL_38, config=config()):
            pass
    assert err.value.code == 1007
    assert "API key not valid" in str(err.value)


async def test_bad_api_key_token_creation(emu: LiveEmulator) -> None:
    admin = client_for(emu, key="wrong", version="v1alpha")
    with pytest.raises(genai_errors.ClientError) as err:
        await admin.aio.auth_tokens.create(config=types.CreateAuthTokenConfig(uses=1))
    assert err.value.code == 400
    assert err.value.status == "INVALID_ARGUMENT"


async def test_extended_thinking_receive_runs_until_idle(emu: LiveEmulator) -> None:
    """The SDK's receive() ends at interactionStatus IDLE, not at the filler's turnComplete."""
    client = client_for(emu)
    cfg = config(
        tools=[types.Tool(function_declarations=[TURN_ON])],
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW),
    )
    async with client.aio.live.connect(model=MODEL_38X, config=cfg) as session:
        assert session.session_id == emu.connections[0].session_id
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="turn on the kitchen light")])
        )
        msgs: list[types.LiveServerMessage] = []
        statuses: list[types.InteractionStatus | None] = []
        async for msg in session.receive():
            msgs.append(msg)
            content = msg.server_content
            if content and content.turn_complete:
                statuses.append(content.interaction_status)
                if content.interaction_status == types.InteractionStatus.IN_PROGRESS:
                    # The slow tool finishes only after the filler turn ended.
                    call = next(m.tool_call for m in msgs if m.tool_call)
                    fc = (call.function_calls or [])[0]
                    await session.send_tool_response(
                        function_responses=[
                            types.FunctionResponse(id=fc.id, name=fc.name, response={"ok": True})
                        ]
                    )
    assert statuses == [types.InteractionStatus.IN_PROGRESS, types.InteractionStatus.IDLE]
    split = next(
        i for i, m in enumerate(msgs) if m.server_content and m.server_content.turn_complete
    )
    assert transcript(msgs[:split]) == "One moment, checking..."
    assert transcript(msgs[split:]) == "Done, the kitchen light is now on."
    parts = [
        p
        for m in msgs
        if m.server_content and m.server_content.model_turn
        for p in m.server_content.model_turn.parts or []
    ]
    assert parts[0].executable_code is not None
    assert parts[0].executable_code.code == "print(default_api.HassTurnOn(name='kitchen light'))"


async def test_sdk_reads_voice_activity(emu: LiveEmulator) -> None:
    client = client_for(emu)
    async with client.aio.live.connect(model=MODEL_31, config=config()) as session:
        pcm = silence(200) + tone(300) + silence(700)
        await session.send_realtime_input(
            audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000")
        )
        msgs = await collect_turn(session)
    activity = [m.voice_activity for m in msgs if m.voice_activity]
    assert [(a.voice_activity_type, a.audio_offset) for a in activity] == [
        (types.VoiceActivityType.ACTIVITY_START, "0.200s"),
        (types.VoiceActivityType.ACTIVITY_END, "1s"),
    ]
