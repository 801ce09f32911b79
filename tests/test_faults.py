"""Trustworthy under faults (issue 9): what the user sees and what Home Assistant executes.

Each test injects a fault the way the network or Home Assistant produces it (the emulator's
faults over real sockets, a reload, a revoked key) and checks the user-visible outcome.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import ipaddress
import logging
from pathlib import Path
import ssl
from typing import Any
from unittest.mock import patch

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from homeassistant.components import conversation
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import Context, HomeAssistant, ServiceCall
from homeassistant.helpers import intent
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import CONF_MODEL, DOMAIN, SUBENTRY_AGENT
from custom_components.gemini_live.runtime.voice_run import VoiceRun
from live_emulator import EmulatorConfig, Fault, LiveEmulator, Scenario

from .conftest import TEST_API_KEY, agent_data
from .ha_compat import chat_content

AGENT = "conversation.gemini_live"
VALIDATION = "custom_components.gemini_live.validation"
NATIVE_AUDIO = "gemini-2.5-flash-native-audio-preview-12-2025"  # TEXT replies in the chat


async def converse(hass: HomeAssistant, text: str, conversation_id: str | None = None) -> Any:
    return await conversation.async_converse(
        hass, text, conversation_id, Context(), agent_id=AGENT, language="en"
    )


def speech(result: conversation.ConversationResult) -> str:
    return str(result.response.speech["plain"]["speech"])


@pytest.fixture
def turn_on_calls(hass: HomeAssistant) -> list[ServiceCall]:
    """Every light.turn_on Home Assistant executes (a fake light service records them)."""
    calls: list[ServiceCall] = []

    async def record(call: ServiceCall) -> None:
        calls.append(call)

    hass.services.async_register("light", "turn_on", record)
    return calls


async def test_no_secret_in_any_log(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9 #6: DEBUG on for every logger; a turn, a credential check and a reauth."""
    caplog.set_level(logging.DEBUG)  # the root logger: every library included
    for name in ("websockets", "websockets.client", "aiohttp", "homeassistant"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    result = await converse(hass, "hello there")
    assert speech(result)
    # The reauth flow validates the (new) key with a real Live session, like the credential check.
    flow = await setup_integration.start_reauth_flow(hass)
    flow = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    flow = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"api_key": TEST_API_KEY, "endpoint": emulator.http_url}
    )
    assert flow["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert "x-goog-api-key" in caplog.text.lower()  # the header lines are there, redacted
    assert TEST_API_KEY not in caplog.text
    for record in caplog.records:
        assert TEST_API_KEY not in record.getMessage()


async def test_revoked_key_with_no_open_session_starts_reauth_once(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Issue 9 #7: a key revoked while no session is open makes the next turn start a reauth."""
    emulator.config.api_keys = frozenset()  # revoked at Google
    for _ in range(2):
        result = await converse(hass, "hello")
        assert result.response.response_type is intent.IntentResponseType.ERROR
        assert "API key was rejected" in speech(result)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]  # once, not per turn


async def test_reload_ends_a_streaming_turn_at_once(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Issue 9 #4: a reload while a reply streams ends the turn now, with a translated error."""
    emulator.config.pace = 1.0  # a real-time reply of many seconds
    emulator.config.scenario = Scenario.from_dict(
        {"turns": [{"match": {"text": "story"}, "steps": [{"say": "Once upon a time. " * 40}]}]}
    )
    turn = hass.async_create_task(converse(hass, "tell me a story"))
    await _wait(lambda: any("modelTurn" in m.get("serverContent", {}) for m in _sent(emulator)))
    await hass.config_entries.async_reload(setup_integration.entry_id)
    await hass.async_block_till_done()
    async with asyncio.timeout(10):  # far less than the reply or the 90 s turn timeout
        result = await turn
    assert result.response.response_type is intent.IntentResponseType.ERROR
    assert "session was closed" in speech(result)
    # The reply was cut: the emulator had not finished it when the session closed.
    assert not any(m.get("serverContent", {}).get("turnComplete") for m in _sent(emulator))
    assert setup_integration.state is ConfigEntryState.LOADED


async def test_concurrent_voice_opens_share_one_later_listener(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Issue 9 #9: two runs opening one conversation at once get one session, one listener."""
    [agent] = setup_integration.runtime_data.agents.values()
    first, second = await asyncio.gather(
        agent.async_voice_conversation("c1"), agent.async_voice_conversation("c1")
    )
    assert first is second
    assert len([c for c in emulator.connections if c.setup]) == 2  # the key check + one session
    run = VoiceRun(agent.subentry.subentry_id, "c1")
    await agent.async_begin_voice_run(run)
    assert not agent.conversations._opening


async def test_announce_leaves_nothing_behind(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Issue 9 #11: one-shot conversations (announce) leave no registry entry or task behind."""
    [agent] = setup_integration.runtime_data.agents.values()
    for _ in range(3):
        said = await agent.async_announce("say hello", [])
        assert said
    assert agent.conversations.all() == []
    assert not agent.conversations._opening
    assert not agent.conversations._idle


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    return list(message.get("serverContent", {}).get("modelTurn", {}).get("parts", []))


def _sent(emulator: LiveEmulator) -> list[dict[str, Any]]:
    return [m for c in emulator.connections for m in c.sent]


async def _wait(predicate: Any, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls records the emulator keeps
            await asyncio.sleep(0.01)


async def test_drop_after_a_blocking_call_runs_the_action_once(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    kitchen_light: str,
    turn_on_calls: list[ServiceCall],
    emulator: LiveEmulator,
) -> None:
    """Issue 9 #1: the connection drops right after the model called an action: HA runs it once,
    the chat log shows one call, and the user still gets the answer."""
    emulator.inject(Fault("drop", after="toolCall", nth=1))
    result = await converse(hass, "turn on the kitchen light")
    assert result.response.response_type is not intent.IntentResponseType.ERROR
    assert speech(result)
    await hass.async_block_till_done()
    assert len(turn_on_calls) == 1
    assert len(emulator.connections) >= 3  # key check, the session, its replacement
    calls = [
        call
        for content in chat_content(hass, result.conversation_id)
        if isinstance(content, conversation.AssistantContent)
        for call in content.tool_calls or ()
    ]
    assert len(calls) == 1
    # The resumed model was told what ran, instead of getting the request again.
    resumed = emulator.connections[-1]
    notes = [
        m["clientContent"]["turns"][0]["parts"][0]["text"]
        for m in resumed.received
        if "clientContent" in m
    ]
    assert any("carried out once" in note for note in notes)


@pytest.mark.parametrize("agent_options", [agent_data(**{CONF_MODEL: NATIVE_AUDIO})])
async def test_drop_mid_reply_gives_one_clean_reply(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Issue 9 #2: a drop in the middle of a streamed text reply: the user reads one reply."""
    emulator.inject(Fault("drop", before="text", nth=2))
    result = await converse(hass, "tell me something")
    # The first connection sent one piece of its reply, then died; the reply the user reads is
    # exactly what the replacement connection's model said, nothing of the dead one added.
    first, last = emulator.connections[1], emulator.connections[-1]
    dead = [p["text"] for m in first.sent for p in _parts(m) if "text" in p]
    regenerated = "".join(p["text"] for m in last.sent for p in _parts(m) if "text" in p)
    assert dead
    assert speech(result) == regenerated


@pytest.mark.parametrize("agent_options", [agent_data(**{CONF_MODEL: "gemini-3.8-live"})])
async def test_failed_background_action_is_told(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
) -> None:
    """Issue 9 #3 and #5: an action that fails (the entity is missing): the INTERRUPT follow-up
    reaches the user after the first turn's words, separated by a space."""
    result = await converse(hass, "turn on the red lamp")  # no such entity
    reply = speech(result)
    assert reply.startswith("Okay, working on it. "), reply
    assert "Sorry, I couldn't" in reply


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for the emulator and a client context trusting it (made off the loop)."""
    cert, key = _self_signed(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_tls_sessions_block_nothing_in_the_event_loop(
    hass: HomeAssistant,
    socket_enabled: None,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    ha_reports_about_us: list[str],
) -> None:
    """Issue 9 #8: over TLS (wss), the credential check, a turn and a reconnect load no
    certificates in the event loop: HA's blocking-call detector (on in every test) stays silent.

    The client context stands in for HA's preloaded default one (the test certificate is not
    in certifi's bundle); what matters is that one is passed and none is made in the loop.
    """
    server_ctx, client_ctx = tls_contexts
    emulator_cfg = EmulatorConfig(api_keys=frozenset({TEST_API_KEY}), pace=0.0)
    async with LiveEmulator(emulator_cfg, ssl_context=server_ctx) as emu:
        assert emu.http_url.startswith("https://")
        with patch(
            "custom_components.gemini_live.validation.get_default_context", return_value=client_ctx
        ):
            entry = MockConfigEntry(
                domain=DOMAIN,
                data={"api_key": TEST_API_KEY, "endpoint": emu.http_url},
                version=2,
                minor_version=1,
                subentries_data=[
                    {
                        "subentry_type": SUBENTRY_AGENT,
                        "data": agent_data(),
                        "title": "Gemini Live",
                        "unique_id": None,
                    }
                ],
            )
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            emu.inject(Fault("drop", after="turnComplete", nth=1))
            for text in ("hello", "hello again"):
                assert speech(await converse(hass, text))
            assert len(emu.connections) >= 3  # the check, the session, its reconnect
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
    assert ha_reports_about_us == []


async def test_unreachable_service_is_logged_once_and_its_return_once(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """log-when-unavailable: one warning when the service goes away, one line when it is back.

    Every turn meanwhile still fails with its translated error.
    """
    port = emulator.port
    await emulator.stop()  # nothing listens at the endpoint any more
    caplog.clear()
    for i in range(3):
        result = await converse(hass, "hello", f"down-{i}")
        assert result.response.response_type is intent.IntentResponseType.ERROR
    ours = [r for r in caplog.records if r.name.startswith("custom_components.gemini_live")]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == [
        "The Gemini Live service cannot be reached"
    ]
    caplog.clear()
    await emulator.start()
    assert emulator.port == port
    for i in range(2):
        result = await converse(hass, "hello", f"up-{i}")
        assert result.response.response_type is not intent.IntentResponseType.ERROR
    back = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.gemini_live") and r.levelno >= logging.INFO
    ]
    assert back.count("The Gemini Live service can be reached again") == 1
