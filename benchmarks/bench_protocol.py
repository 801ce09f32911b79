"""Protocol benchmark: our client's CPU cost per audio message vs the google-genai SDK.

Both clients run over the same in-memory fake websocket, so only the client's own work is
measured: building + serialising an outgoing ``realtimeInput.audio`` message (ours: through the
protocol state machine, replay log included), and parsing an incoming ``serverContent.modelTurn``
audio frame (pretty-printed JSON as the real server sends it) into typed events with the audio
decoded to bytes.

The replay-log lines show the per-send cost at several amounts of audio sent so far: flat past
the 30 s replay bound (each send drops at most one old message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import json
import os
import time
from typing import Any

from google import genai
from google.genai import live as genai_live, types

from benchmarks.bench_audio import bench_resampler
from custom_components.gemini_live.live.messages import AudioOut, SetupConfig
from custom_components.gemini_live.live.models import DEFAULT_MODEL
from custom_components.gemini_live.live.protocol import LiveProtocol, OpenConnection


class FakeWebsocket:
    """Just enough of websockets' ClientConnection for both clients."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = incoming
        self.sent = 0
        self.close_code = None

    async def send(self, frame: str | bytes, text: bool | None = None) -> None:
        self.sent += len(frame)

    async def recv(self, decode: bool | None = None) -> bytes:
        return self.incoming


def server_audio_frame(pcm: bytes) -> bytes:
    """A server audio frame exactly as the Live server sends it (pretty JSON, binary frame)."""
    import base64

    msg = {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {
                        "inlineData": {
                            "mimeType": "audio/pcm;rate=24000",
                            "data": base64.b64encode(pcm).decode(),
                        }
                    }
                ]
            }
        }
    }
    return json.dumps(msg, indent=2).encode()


async def _per_call_us(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(min(200, n)):
        await fn()
    start = time.process_time()
    for _ in range(n):
        await fn()
    return (time.process_time() - start) / n * 1e6


def open_protocol() -> tuple[LiveProtocol, int]:
    """A protocol with its connection open (setup answered)."""
    proto = LiveProtocol(SetupConfig(model=DEFAULT_MODEL))
    proto.start()
    gen = next(e.gen for e in proto.events() if isinstance(e, OpenConnection))
    proto.setup_frame(gen)
    proto.receive(gen, b'{"setupComplete": {}}')
    proto.events()
    return proto, gen


async def _run(n: int) -> list[str]:
    lines: list[str] = []
    api_client = genai.Client(api_key="bench-key")._api_client
    for out_ms, in_ms in ((10, 40), (100, 200)):
        mic = bytes(range(256)) * (out_ms * 32 // 256 + 1)
        mic = mic[: out_ms * 32]  # 16 kHz PCM16
        reply = (bytes(range(256)) * (in_ms * 48 // 256 + 1))[: in_ms * 48]  # 24 kHz PCM16
        frame = server_audio_frame(reply)

        ours_ws, sdk_ws = FakeWebsocket(frame), FakeWebsocket(frame)
        proto, gen = open_protocol()
        sdk = genai_live.AsyncSession(api_client, sdk_ws)  # type: ignore[arg-type]
        blob = "audio/pcm;rate=16000"

        async def ours_send() -> None:
            proto.send_audio(mic)  # noqa: B023
            for _gen, data in proto.data_to_send():  # noqa: B023
                await ours_ws.send(data)  # noqa: B023

        async def sdk_send() -> None:
            await sdk.send_realtime_input(audio=types.Blob(data=mic, mime_type=blob))  # noqa: B023

        async def ours_recv() -> None:
            proto.receive(gen, await ours_ws.recv())  # noqa: B023
            events = proto.events()  # noqa: B023
            assert isinstance(events[-1], AudioOut)
            assert len(events[-1].data) == len(reply)  # noqa: B023

        async def sdk_recv() -> None:
            # Every field of the SDK's message is Optional; this frame has them all.
            msg: Any = await sdk._receive()  # noqa: B023
            data = msg.server_content.model_turn.parts[0].inline_data.data
            assert len(data) == len(reply)  # noqa: B023

        o_out = await _per_call_us(ours_send, n)
        s_out = await _per_call_us(sdk_send, n)
        o_in = await _per_call_us(ours_recv, n)
        s_in = await _per_call_us(sdk_recv, n)
        lines.append(
            f"audio out {out_ms:>3} ms/msg: ours {o_out:7.1f} us  sdk {s_out:7.1f} us  "
            f"ratio {o_out / s_out:.3f}x"
        )
        lines.append(
            f"audio in  {in_ms:>3} ms/msg: ours {o_in:7.1f} us  sdk {s_in:7.1f} us  "
            f"ratio {o_in / s_in:.3f}x"
        )
    return lines


def bench_protocol(n: int = 3000) -> list[str]:
    """Run the codec comparison; returns printable lines."""
    return asyncio.run(_run(n))


def bench_replay_log(chunk_ms: int = 20, window: int = 200) -> list[str]:
    """Per-send cost of 20 ms mic messages at 5 s, 29 s, 60 s and 300 s of audio sent.

    The replay log keeps 30 s; past it each send drops the oldest audio message: the cost must
    stay flat (no rebuild of the log per send).
    """
    proto, _gen = open_protocol()
    proto.begin_speech()
    mic = bytes(chunk_ms * 32)
    sent = 0
    lines = []
    costs = []
    for mark_s in (5, 29, 60, 300):
        while sent * chunk_ms < mark_s * 1000 - window * chunk_ms:
            proto.send_audio(mic)
            proto.data_to_send()
            sent += 1
        start = time.process_time()
        for _ in range(window):
            proto.send_audio(mic)
            proto.data_to_send()
        sent += window
        cost = (time.process_time() - start) / window * 1e6
        costs.append(cost)
        lines.append(
            f"replay log at {mark_s:>3} s of audio: {cost:6.1f} us/send "
            f"(kept {proto.replay_audio_s:.1f} s, {proto.unacknowledged} messages)"
        )
    lines.append(
        f"replay log per send at 300 s vs 60 s (both past the 30 s bound): "
        f"{costs[-1] / costs[-2]:.2f}x; vs 5 s (before it, nothing dropped): "
        f"{costs[-1] / costs[0]:.2f}x"
    )
    return lines


def main() -> None:
    """Print protocol and resampler numbers in one run (BENCH_QUICK=1: fewer iterations)."""
    quick = os.environ.get("BENCH_QUICK") == "1"
    for line in bench_protocol(300 if quick else 3000):
        print(line, flush=True)
    for line in bench_replay_log(window=20 if quick else 200):
        print(line, flush=True)
    for line in bench_resampler(seconds=1.0 if quick else 10.0):
        print(line, flush=True)


if __name__ == "__main__":
    main()
