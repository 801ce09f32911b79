"""Codec tests: every client frame we build conforms to the SDK's types; server frames parse."""

from __future__ import annotations

import base64
from collections.abc import Iterator
import json
from pathlib import Path

from google.genai import types
import orjson
import pytest

from custom_components.gemini_live.live import messages as m
from custom_components.gemini_live.live.models import MODELS

from .sdk_oracle import validate_client, validate_server

# Real Live API transcripts (copied from the project's shared fixtures; see their README).
FIXTURES = Path(__file__).parents[1] / "fixtures" / "recorded-live"


def _full_setup() -> m.SetupConfig:
    return m.SetupConfig(
        model="gemini-2.5-flash-native-audio-preview-12-2025",
        response_modality=m.Modality.AUDIO,
        temperature=0.7,
        media_resolution=m.MediaResolution.LOW,
        voice="Kore",
        language_code="en-US",
        thinking=m.ThinkingConfig(budget=0, include_thoughts=False),
        affective_dialog=True,
        proactive_audio=True,
        system_instruction="You are a helpful home assistant.",
        functions=[
            m.FunctionDeclaration(
                "HassTurnOn",
                "Turns on a device",
                {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
                m.Behavior.NON_BLOCKING,
            ),
            m.FunctionDeclaration("GetLiveContext", "State", None, m.Behavior.BLOCKING),
        ],
        google_search=True,
        vad=m.VadConfig(
            disabled=False,
            start_sensitivity=m.StartSensitivity.HIGH,
            end_sensitivity=m.EndSensitivity.LOW,
            prefix_padding_ms=20,
            silence_duration_ms=100,
        ),
        activity_handling=m.ActivityHandling.INTERRUPTS,
        turn_coverage=m.TurnCoverage.ALL_INPUT,
        input_transcription=True,
        output_transcription=True,
        compression=m.CompressionConfig(trigger_tokens=25600, target_tokens=12800),
        resumption_handle="handle-1",
        max_output_tokens=256,
    )


def all_client_frames() -> Iterator[tuple[str, dict[str, object]]]:
    """Every kind of client frame the integration can produce."""
    yield "setup-full", m.build_setup(_full_setup())
    yield "setup-minimal", m.build_setup(m.SetupConfig(model="gemini-3.8-live"))
    yield (
        "setup-level",
        m.build_setup(
            m.SetupConfig(
                model="gemini-3.1-flash-live-preview",
                thinking=m.ThinkingConfig(level=m.ThinkingLevel.LOW),
                vad=m.VadConfig(disabled=True),
                activity_handling=m.ActivityHandling.NO_INTERRUPTION,
                turn_coverage=m.TurnCoverage.AUDIO_ACTIVITY_AND_ALL_VIDEO,
                session_resumption=False,
            )
        ),
    )
    yield "text", m.client_content("Hi")
    yield "history", m.client_content([("user", "a"), ("model", "b")], turn_complete=False)
    yield "audio", json.loads(m.realtime_audio_frame(b"\x01\x00" * 160))
    yield "audio-48k", json.loads(m.realtime_audio_frame(b"\x01\x00" * 480, 48000))
    yield "video", m.realtime_video(b"\xff\xd8\xff\xe0jpeg")
    yield "rt-text", m.realtime_text("hello")
    yield "activity-start", m.activity_start()
    yield "activity-end", m.activity_end()
    yield "stream-end", m.audio_stream_end()
    for sched in (*m.Scheduling, None):
        yield (
            f"tool-response-{sched}",
            m.tool_response(
                [m.FunctionResult("function-call-1", "HassTurnOn", {"result": 15}, sched)]
            ),
        )


@pytest.mark.parametrize(("name", "frame"), list(all_client_frames()))
def test_client_frames_conform_to_sdk(name: str, frame: dict[str, object]) -> None:
    """Each frame validates against the SDK's LiveClientMessage (extra fields forbidden)."""
    # Through the wire encoding, exactly as sent.
    wire = json.loads(m.encode(frame))
    msg = validate_client(wire)
    assert msg.model_dump(exclude_none=True), name


@pytest.mark.parametrize("rate", [16000, 48000])
def test_audio_frame_carries_the_samples_and_rate(rate: int) -> None:
    """The directly built audio frame is the JSON ``encode`` would make of the same message."""
    pcm = bytes(range(256)) * 3
    frame = m.realtime_audio_frame(pcm, rate)
    audio = {"data": base64.b64encode(pcm).decode(), "mimeType": f"audio/pcm;rate={rate}"}
    assert frame == m.encode({"realtimeInput": {"audio": audio}})
    assert validate_client(json.loads(frame)).realtime_input.audio.data == pcm


def test_full_setup_fields_survive_validation() -> None:
    """The SDK sees every field we send with its meaning (not silently dropped)."""
    msg = validate_client(json.loads(m.encode(m.build_setup(_full_setup()))))
    setup = msg.setup
    assert setup is not None
    gen = setup.generation_config
    assert gen is not None
    assert gen.speech_config.voice_config.prebuilt_voice_config.voice_name == "Kore"
    assert gen.thinking_config.thinking_budget == 0
    assert gen.enable_affective_dialog is True
    assert gen.media_resolution == types.MediaResolution.MEDIA_RESOLUTION_LOW
    decl = setup.tools[0].function_declarations[0]
    assert decl.behavior == types.Behavior.NON_BLOCKING
    assert setup.tools[1].google_search is not None
    ric = setup.realtime_input_config
    assert ric.automatic_activity_detection.silence_duration_ms == 100
    assert ric.automatic_activity_detection.start_of_speech_sensitivity.value == (
        "START_SENSITIVITY_HIGH"
    )
    assert setup.context_window_compression.sliding_window.target_tokens == 12800
    assert setup.session_resumption.handle == "handle-1"
    assert setup.proactivity.proactive_audio is True


def test_tool_response_carries_scheduling_twice() -> None:
    """Scheduling goes in the proto field and inside response (which the server reads varies)."""
    frame = m.tool_response([m.FunctionResult("id1", "f", {"ok": 1}, m.Scheduling.SILENT)])
    resp = frame["toolResponse"]["functionResponses"][0]
    assert resp["scheduling"] == "SILENT"
    assert resp["response"] == {"ok": 1, "scheduling": "SILENT"}
    msg = validate_client(frame)
    assert msg.tool_response.function_responses[0].scheduling.value == "SILENT"


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (m.StartSensitivity, types.StartSensitivity),
        (m.EndSensitivity, types.EndSensitivity),
        (m.ActivityHandling, types.ActivityHandling),
        (m.TurnCoverage, types.TurnCoverage),
        (m.Behavior, types.Behavior),
        (m.Scheduling, types.FunctionResponseScheduling),
        (m.ThinkingLevel, types.ThinkingLevel),
        (m.MediaResolution, types.MediaResolution),
        (m.Modality, types.Modality),
    ],
)
def test_enum_values_exist_in_sdk(ours: type[m.StrEnum], theirs: type[object]) -> None:
    """Every enum value we can send is one the API defines."""
    valid = {e.value for e in theirs}  # type: ignore[attr-defined]
    assert {e.value for e in ours} <= valid


def test_voices() -> None:
    """30 prebuilt voices, default Puck."""
    assert len(m.VOICES) == 30
    assert len(set(m.VOICES)) == 30
    assert m.DEFAULT_VOICE in m.VOICES


def test_models_table_has_design_models() -> None:
    """The capability table covers the documented models."""
    assert set(MODELS) == {
        "gemini-3.8-live",
        "gemini-3.8-live-extended-thinking",
        "gemini-3.1-flash-live-preview",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-preview-09-2025",
    }


# ---------------------------------------------------------------- recorded real sessions


def _recorded(direction: str) -> Iterator[tuple[str, str]]:
    """Frames of one direction ("<" server, ">" client) from the recorded transcripts."""
    for path in sorted(FIXTURES.glob("*.websocket.log")):
        frames: list[tuple[str, list[str]]] = []
        for line in path.read_text().splitlines():
            head = line.split(" ", 1)[0]
            if head[:1] in "<>" and head[1:].isdigit():
                frames.append((head[0], [line.partition(" ")[2]]))
            elif frames:
                frames[-1][1].append(line)
        for d, lines in frames:
            if d == direction:
                yield path.name, "\n".join(lines).strip()


def test_recorded_fixtures_exist() -> None:
    """The real-server transcripts are present (they ship with the repo's shared docs)."""
    assert len(list(_recorded("<"))) >= 8
    assert len(list(_recorded(">"))) >= 5


@pytest.mark.parametrize(("name", "body"), list(_recorded("<")))
def test_recorded_server_frames_parse(name: str, body: str) -> None:
    """Every frame a real server sent parses, validates against the SDK and yields events."""
    validate_server(json.loads(body))
    events = m.parse_server_message(body.encode())
    if json.loads(body):
        assert events or "executableCode" in body, name


@pytest.mark.parametrize(("name", "body"), list(_recorded(">")))
def test_recorded_client_frames_validate(name: str, body: str) -> None:
    """The oracle itself accepts what real clients sent (sanity of the oracle)."""
    validate_client(json.loads(body))


def test_recorded_tool_call_session() -> None:
    """The tool-call transcript yields the call with its args and id."""
    bodies = [b for n, b in _recorded("<") if n == "ml_dev_send_tool_response.websocket.log"]
    events = [e for b in bodies for e in m.parse_server_message(b)]
    calls = [e for e in events if isinstance(e, m.ToolCall)]
    assert calls[0].calls[0] == m.FunctionCall(
        "function-call-5831923424298605773", "get_current_weather", {"location": "Redmond, WA"}
    )
    assert isinstance(events[0], m.SetupComplete)


def test_recorded_usage_turn() -> None:
    """A turn ends generationComplete -> turnComplete -> usage, counts parsed."""
    events = [
        e
        for n, b in _recorded("<")
        if n == "ml_dev_send_text_usage.websocket.log"
        for e in m.parse_server_message(b)
    ]
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("GenerationComplete") < kinds.index("TurnComplete") < kinds.index("Usage")
    usage = next(e for e in events if isinstance(e, m.Usage))
    assert usage.total_tokens == usage.prompt_tokens + usage.response_tokens > 0


# ---------------------------------------------------------------- parser edge cases


def test_both_base64_alphabets_and_missing_padding() -> None:
    """URL-safe (SDK) and standard (server) base64 both decode, padding optional."""
    raw = bytes(range(256)) * 3 + b"\xfb\xff"
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert "+" in std or "/" in std
    for data in (std, url):
        frame = {
            "serverContent": {
                "modelTurn": {
                    "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}]
                }
            }
        }
        [event] = m.parse_server_message(orjson.dumps(frame))
        assert event == m.AudioOut(raw, 24000)


def test_vertex_shapes() -> None:
    """Vertex omits the audio rate, adds role and a sessionId."""
    frame = {
        "serverContent": {
            "modelTurn": {
                "role": "model",
                "parts": [{"inlineData": {"mimeType": "audio/pcm", "data": "AAA="}}],
            }
        }
    }
    assert m.parse_server_message(json.dumps(frame)) == [m.AudioOut(b"\x00\x00", 24000)]
    assert m.parse_server_message('{"setupComplete": {"sessionId": "s1"}}') == [
        m.SetupComplete("s1")
    ]


def test_int64_strings_and_all_server_messages() -> None:
    """Every server message kind parses; int64 counts may be strings."""
    frame = {
        "serverContent": {
            "modelTurn": {"parts": [{"text": "hmm", "thought": True}, {"text": "Hi"}]},
            "inputTranscription": {"text": "hello", "finished": True},
            "outputTranscription": {"text": " could"},
            "groundingMetadata": {"webSearchQueries": ["q"]},
            "generationComplete": True,
            "turnComplete": True,
            "turnCompleteReason": "NEED_MORE_INPUT",
            "waitingForInput": True,
        },
        "usageMetadata": {
            "promptTokenCount": "515",
            "responseTokenCount": 38,
            "totalTokenCount": "553",
            "thoughtsTokenCount": "7",
        },
    }
    validate_server(frame)
    assert m.parse_server_message(json.dumps(frame)) == [
        m.TextOut("hmm", thought=True),
        m.TextOut("Hi"),
        m.InputTranscription("hello", finished=True),
        m.OutputTranscription(" could"),
        m.Grounding((), ("q",), {"webSearchQueries": ["q"]}),
        m.GenerationComplete(),
        m.TurnComplete("NEED_MORE_INPUT", waiting_for_input=True),
        m.Usage(prompt_tokens=515, response_tokens=38, total_tokens=553, thoughts_tokens=7),
    ]
    others = [
        ({"serverContent": {"interrupted": True}}, [m.Interrupted()]),
        (
            {"toolCallCancellation": {"ids": ["function-call-58"]}},
            [m.ToolCallCancellation(("function-call-58",))],
        ),
        ({"goAway": {"timeLeft": "50s"}}, [m.GoAway(50.0)]),
        ({"goAway": {"timeLeft": "0.5s"}}, [m.GoAway(0.5)]),
        (
            {"sessionResumptionUpdate": {"newHandle": "h", "resumable": True}},
            [m.ResumptionUpdate("h", True)],
        ),
        (
            {
                "sessionResumptionUpdate": {
                    "newHandle": "h",
                    "resumable": True,
                    "lastConsumedClientMessageIndex": "12",
                }
            },
            [m.ResumptionUpdate("h", True, 12)],
        ),
        ({"sessionResumptionUpdate": {}}, [m.ResumptionUpdate(None, False)]),
        (
            {"voiceActivity": {"type": "ACTIVITY_START", "audioOffset": "1.230s"}},
            [m.VoiceActivity("ACTIVITY_START")],
        ),
        ({}, []),
    ]
    for frame_, expected in others:
        validate_server(frame_)
        assert m.parse_server_message(json.dumps(frame_)) == expected


def test_unknown_fields_are_tolerated(caplog: pytest.LogCaptureFixture) -> None:
    """Fields from a newer API version never crash the parser; logged once."""
    frame = {
        "serverContent": {"turnComplete": True, "futureThing": {"x": 1}},
        "brandNewMessage": {},
        "goAway": {"timeLeft": "1s"},
    }
    caplog.set_level("DEBUG")
    for _ in range(3):
        events = m.parse_server_message(json.dumps(frame))
        assert events == [m.TurnComplete(), m.GoAway(1.0)]
    assert caplog.text.count("serverContent.futureThing") == 1


@pytest.mark.parametrize(
    "frame",
    [
        b"{not json",
        b"[1, 2]",
        b'{"toolCall": {"functionCalls": [{"args": {}}]}}',
        b'{"usageMetadata": {"promptTokenCount": "many"}}',
        b'{"goAway": {"timeLeft": "soon"}}',
        b'{"serverContent": {"modelTurn": {"parts": [{"inlineData": '
        b'{"mimeType": "audio/pcm", "data": "@@@"}}]}}}',
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes) -> None:
    """Malformed server frames raise a clear ProtocolError (never another exception)."""
    with pytest.raises(m.ProtocolError):
        m.parse_server_message(frame)


def test_current_live_api_fields() -> None:
    """Issue 13: the fields today's server sends are parsed, not dropped."""
    grounding = {
        "searchEntryPoint": {"renderedContent": "<div></div>"},
        "groundingChunks": [
            {"web": {"uri": "https://vertexaisearch.example/r/1", "title": "weather.example.com"}},
            {"web": {"uri": "https://vertexaisearch.example/r/2", "title": "news.example.org"}},
        ],
        "webSearchQueries": ["weather tomorrow"],
    }
    frame = {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                    {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
                ]
            },
            "interimInputTranscription": {"text": "turn off the"},
            "groundingMetadata": grounding,
            "urlContextMetadata": {
                "urlMetadata": [
                    {
                        "retrievedUrl": "https://a.example",
                        "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS",
                    },
                    {
                        "retrievedUrl": "https://b.example",
                        "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_ERROR",
                    },
                ]
            },
            "turnComplete": True,
            "turnCompleteReason": "GENERATED_CONTENT_SAFETY",
            "interactionStatus": "IN_PROGRESS",
        },
        "usageMetadata": {
            "promptTokenCount": 600,
            "responseTokenCount": 90,
            "totalTokenCount": 690,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 500},
                {"modality": "AUDIO", "tokenCount": 100},
            ],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": "90"}],
        },
    }
    validate_server(frame)
    events = m.parse_server_message(json.dumps(frame))
    assert events == [
        m.InterimTranscription("turn off the"),
        m.Grounding(
            (
                m.Source("https://vertexaisearch.example/r/1", "weather.example.com"),
                m.Source("https://vertexaisearch.example/r/2", "news.example.org"),
            ),
            ("weather tomorrow",),
            grounding,
        ),
        m.Grounding(
            (m.Source("https://a.example", "https://a.example"),),
            (),
            frame["serverContent"]["urlContextMetadata"],  # type: ignore[index]
        ),
        m.TurnComplete(
            "GENERATED_CONTENT_SAFETY",
            interaction_status=m.InteractionStatus.IN_PROGRESS,
        ),
        m.Usage(
            prompt_tokens=600,
            response_tokens=90,
            total_tokens=690,
            prompt_text=500,
            prompt_audio=100,
            response_audio=90,
        ),
    ]
    turn_complete = events[3]
    assert isinstance(turn_complete, m.TurnComplete)
    assert turn_complete.abnormal
    assert not m.TurnComplete("NEED_MORE_INPUT").abnormal


def test_streamed_and_id_less_tool_calls() -> None:
    """partialArgs / willContinue are kept; a call without id gets a local one, answered without."""
    frame = {
        "toolCall": {
            "functionCalls": [
                {
                    "name": "HassTurnOn",
                    "id": "c1",
                    "partialArgs": [
                        {"jsonPath": "$.name", "stringValue": "kitc", "willContinue": True}
                    ],
                    "willContinue": True,
                },
                {"name": "HassTurnOff", "args": {"name": "fan"}},
            ]
        }
    }
    (event,) = m.parse_server_message(json.dumps(frame))
    assert isinstance(event, m.ToolCall)
    streamed, id_less = event.calls
    assert streamed.will_continue
    assert streamed.partial == (
        {"jsonPath": "$.name", "stringValue": "kitc", "willContinue": True},
    )
    assert id_less.id.startswith(m.LOCAL_CALL_ID)
    wire = m.tool_response([m.FunctionResult(id_less.id, "HassTurnOff", {"ok": True})])
    assert wire == {
        "toolResponse": {"functionResponses": [{"name": "HassTurnOff", "response": {"ok": True}}]}
    }


def test_setup_transcription_and_proactivity() -> None:
    """customVocabulary, SMART transcription and proactive video reach the setup."""
    setup = m.build_setup(
        m.SetupConfig(
            model="gemini-3.8-live",
            input_transcription=True,
            transcription_vocabulary=("Ikea Strala", "Kitchen"),
            smart_transcription=True,
            proactive_video=True,
        )
    )["setup"]
    assert setup["inputAudioTranscription"] == {
        "customVocabulary": ["Ikea Strala", "Kitchen"],
        "mode": "SMART",
    }
    assert setup["proactivity"] == {"proactiveVideo": True}
    validate_client({"setup": setup})
