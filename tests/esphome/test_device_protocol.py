"""The simulated device against aioesphomeapi's own client (no HA): the wire protocol."""

from __future__ import annotations

import asyncio

from aioesphomeapi import (
    APIClient,
    InvalidEncryptionKeyAPIError,
    MediaPlayerInfo,
    RequiresEncryptionAPIError,
    VoiceAssistantAudioSettings,
    VoiceAssistantEventType,
)
import pytest

from devtools.esphome_satellite import VOICE_PE_FEATURES, EsphomeSatellite, audio_offset

from ..conftest import wait_for


@pytest.mark.parametrize("encrypted", [False, True])
async def test_hello_device_info_entities_and_a_run(socket_enabled: None, encrypted: bool) -> None:
    """Connect (plaintext or Noise), read what a Voice PE announces, run a pipeline by hand."""
    psk = EsphomeSatellite.new_psk() if encrypted else None
    async with EsphomeSatellite(noise_psk=psk) as device:
        client = APIClient("127.0.0.1", device.port, "", noise_psk=psk)
        await client.connect(login=True)
        try:
            info, entities, _services = await client.device_info_and_list_entities()
            assert info.name == device.name
            assert info.mac_address == device.mac
            assert info.voice_assistant_feature_flags == VOICE_PE_FEATURES
            assert info.api_encryption_supported is encrypted
            [player] = entities
            assert isinstance(player, MediaPlayerInfo)
            assert [f.format for f in player.supported_formats] == ["flac", "flac"]
            config = await client.get_voice_assistant_configuration(5)
            assert config.available_wake_words[0].id == "okay_nabu"
            assert config.active_wake_words == ["okay_nabu"]

            starts: list[tuple[str, int, str | None]] = []
            audio: list[bytes] = []

            async def handle_start(
                conversation_id: str,
                flags: int,
                settings: VoiceAssistantAudioSettings,
                wake_word: str | None,
            ) -> int:
                starts.append((conversation_id, flags, wake_word))
                return 0  # audio over the API

            async def handle_stop(abort: bool) -> None:
                """Nothing to stop."""

            async def handle_audio(data: bytes, data2: bytes | None) -> None:
                audio.append(data)

            unsubscribe = client.subscribe_voice_assistant(
                handle_start=handle_start, handle_stop=handle_stop, handle_audio=handle_audio
            )
            await device.wait_connected(5)
            tone = (b"\x00\x20\x00\xe0" * 4000)[: 16000 * 2]  # 1 s, loud
            handle = await device.start_run(tone, realtime=False)
            await wait_for(lambda: len(audio) >= 16000 * 2 // 1024, within=10)
            events = (
                (VoiceAssistantEventType.VOICE_ASSISTANT_RUN_START, {}),
                (VoiceAssistantEventType.VOICE_ASSISTANT_STT_END, {"text": "hello"}),
                (
                    VoiceAssistantEventType.VOICE_ASSISTANT_INTENT_END,
                    {"conversation_id": "abc", "continue_conversation": "0", "speech": "Hi"},
                ),
                (VoiceAssistantEventType.VOICE_ASSISTANT_RUN_END, {}),
            )
            for event_type, data in events:
                client.send_voice_assistant_event(event_type, data)
            result = await handle.wait(within=10)
            unsubscribe()
        finally:
            await client.disconnect()
    assert starts == [("", 0, "Okay Nabu")]
    assert {len(chunk) for chunk in audio} == {1024}  # 32 ms of 16 kHz PCM16, as the firmware
    assert b"".join(audio)[: len(tone)] == tone
    assert result.event_types == ["RUN_START", "STT_END", "INTENT_END", "RUN_END"]
    assert result.stt_text == "hello"
    assert result.conversation_id == "abc"
    assert result.mic_stopped_at is not None
    assert result.run_end_at is not None
    assert result.mic_stopped_at >= result.run_end_at  # the mic ran until RUN_END


async def test_noise_refusals(socket_enabled: None) -> None:
    """A wrong key and a plaintext client get the errors a real device's refusals give."""
    async with EsphomeSatellite(noise_psk=EsphomeSatellite.new_psk()) as device:
        wrong = APIClient("127.0.0.1", device.port, "", noise_psk=EsphomeSatellite.new_psk())
        with pytest.raises(InvalidEncryptionKeyAPIError) as err:
            await wrong.connect(login=True)
        assert err.value.received_name == device.name
        plain = APIClient("127.0.0.1", device.port, "")
        with pytest.raises(RequiresEncryptionAPIError):
            await plain.connect(login=True)
        await asyncio.sleep(0)
    assert len(device.protocol_errors) == 2


def test_audio_offset() -> None:
    """The first audio byte is found past FLAC metadata, a WAV header or an ID3 tag."""
    streaminfo = b"\x00" + (34).to_bytes(3, "big") + bytes(34)
    comment = b"\x84" + (6).to_bytes(3, "big") + b"ffmpeg"
    flac = b"fLaC" + streaminfo + comment
    assert audio_offset(flac[:20]) is None
    assert audio_offset(flac) == len(flac)
    wav = b"RIFF\xff\xff\xff\xffWAVEfmt " + (16).to_bytes(4, "little") + bytes(16) + b"data\0\0\0\0"
    assert audio_offset(wav) == 44
    assert audio_offset(b"ID3\x04\x00\x00\x00\x00\x01\x00") == 10 + 128
    assert audio_offset(b"\xff\xfb\x90\x00") == 0
