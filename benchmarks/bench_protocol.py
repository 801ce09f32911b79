"""Protocol benchmark: our client's CPU cost per audio message vs the google-genai SDK.

Both clients run over the same in-memory fake websocket, so only the codec work is measured:
building + serialising an outgoing ``realtimeInput.audio`` message, and parsing an incoming
``serverContent.modelTurn`` audio frame (pretty-printed JSON as the real server sends it) into
typed objects with the audio decoded to bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import json
import time
from typing import Any

from google import genai
from google.genai import live as genai_live, types

from benchmarks.bench_audio import bench_resampler
from custom_components.gemini_live.live.connection import LiveConnection
from custom_components.gemini_live.live.messages import AudioOut, realtime_audio


class FakeWebsocket:
    """Just enough of websockets' ClientConnection for both clients."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = incoming
        self.sent = 0
        self.close_code = None

    async def send(self, frame: str) -> None:
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


async def _run(n: int) -> list[str]:
    lines: list[str] = []
    api_client = genai.Client(api_key="bench-key")._api_client
    for out_ms, in_ms in ((10, 40), (100, 200)):
        mic = bytes(range(256)) * (out_ms * 32 // 256 + 1)
        mic = mic[: out_ms * 32]  # 16 kHz PCM16
        reply = (bytes(range(256)) * (in_ms * 48 // 256 + 1))[: in_ms * 48]  # 24 kHz PCM16
        frame = server_audio_frame(reply)

        ours_ws, sdk_ws = FakeWebsocket(frame), FakeWebsocket(frame)
        ours = LiveConnection(ours_ws, None)  # type: ignore[arg-type]
        sdk = genai_live.AsyncSession(api_client, sdk_ws)  # type: ignore[arg-type]
        blob = "audio/pcm;rate=16000"

        async def ours_send() -> None:
            await ours.send(realtime_audio(mic))  # noqa: B023

        async def sdk_send() -> None:
            await sdk.send_realtime_input(audio=types.Blob(data=mic, mime_type=blob))  # noqa: B023

        async def ours_recv() -> None:
            events = await ours.recv()  # noqa: B023
            assert isinstance(events[0], AudioOut)
            assert len(events[0].data) == len(reply)  # noqa: B023

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


def main() -> None:
    """Print protocol and resampler numbers in one run."""
    for line in bench_protocol():
        print(line, flush=True)
    for line in bench_resampler():
        print(line, flush=True)


if __name__ == "__main__":
    main()
