"""Repair issues raised by Live session failures, and the missing-model fix flow."""

from __future__ import annotations

from http import HTTPStatus
import json
from pathlib import Path
from typing import Any

from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import intent, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.gemini_live.const import CONF_MODEL, DOMAIN
from custom_components.gemini_live.live.models import DEFAULT_MODEL
from custom_components.gemini_live.repairs import (
    ISSUE_MODEL_NOT_FOUND,
    ISSUE_QUOTA_EXCEEDED,
    model_issue_id,
    quota_issue_id,
)
from live_emulator import Fault, LiveEmulator
from live_emulator.errors import clip_reason

from .conftest import agent_data

AGENT = "conversation.gemini_live"
NATIVE_AUDIO = "gemini-2.5-flash-native-audio-preview-12-2025"
COMPONENT = Path(__file__).parent.parent / "custom_components" / DOMAIN


def not_found(model: str) -> Fault:
    """What the real server sends for a retired/unknown model, before setupComplete."""
    return Fault(
        "close",
        after_server_messages=0,
        code=1008,
        # A close frame carries at most 123 bytes: the real server clips long reasons.
        reason=clip_reason(
            f"models/{model} is not found for API version v1beta, "
            "or is not supported for bidiGenerateContent"
        ),
    )


QUOTA_REASON = "You exceeded your current quota, please check your plan and billing details."


async def converse(hass: HomeAssistant, text: str) -> conversation.ConversationResult:
    """One text turn on a new conversation."""
    return await conversation.async_converse(
        hass, text, None, Context(), agent_id=AGENT, language="en"
    )


async def converse_fails(hass: HomeAssistant, text: str) -> None:
    """A turn that fails: HA answers with an error response (our HomeAssistantError)."""
    result = await converse(hass, text)
    assert result.response.response_type is intent.IntentResponseType.ERROR


def agent_subentry_id(entry: MockConfigEntry) -> str:
    """The id of the entry's only agent."""
    [subentry_id] = entry.subentries
    return subentry_id


@pytest.fixture
async def repairs(hass: HomeAssistant) -> None:
    """The repairs integration (its fix-flow HTTP API)."""
    assert await async_setup_component(hass, "repairs", {})


async def start_fix_flow(client: Any, handler: str, issue_id: str) -> dict[str, Any]:
    """POST /api/repairs/issues/fix (what the frontend does)."""
    resp = await client.post(
        "/api/repairs/issues/fix", json={"handler": handler, "issue_id": issue_id}
    )
    assert resp.status == HTTPStatus.OK, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def submit_fix_flow(client: Any, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """POST /api/repairs/issues/fix/{flow_id}."""
    resp = await client.post(f"/api/repairs/issues/fix/{flow_id}", json=data)
    assert resp.status == HTTPStatus.OK, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


@pytest.mark.parametrize("agent_options", [agent_data(**{CONF_MODEL: NATIVE_AUDIO})])
async def test_model_not_found_issue_and_fix(
    hass: HomeAssistant,
    repairs: None,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    hass_client: ClientSessionGenerator,
) -> None:
    """1008 "not found" -> fixable issue; the fix switches the agent to the default model."""
    entry = setup_integration
    subentry_id = agent_subentry_id(entry)
    emulator.inject(not_found(NATIVE_AUDIO))

    await converse_fails(hass, "hello")

    issue_id = model_issue_id(subentry_id)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_MODEL_NOT_FOUND
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "model": NATIVE_AUDIO,
        "agent": "Gemini Live",
        "default_model": DEFAULT_MODEL,
    }

    client = await hass_client()
    flow = await start_fix_flow(client, DOMAIN, issue_id)
    assert flow["type"] == "form"
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["model"] == NATIVE_AUDIO
    result = await submit_fix_flow(client, flow["flow_id"], {})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()  # the entry reloads with the new model

    assert entry.subentries[subentry_id].data[CONF_MODEL] == DEFAULT_MODEL
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None

    # The agent works again, on the default model.
    assert (await converse(hass, "hello")).response.speech["plain"]["speech"]
    assert emulator.connections[-1].model == DEFAULT_MODEL


async def test_default_model_not_found_is_not_fixable(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """Switching to the default model cannot help when that is the missing one."""
    emulator.inject(not_found(DEFAULT_MODEL))
    await converse_fails(hass, "hello")
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, model_issue_id(agent_subentry_id(setup_integration))
    )
    assert issue is not None
    assert not issue.is_fixable


@pytest.mark.parametrize("agent_options", [agent_data(**{CONF_MODEL: NATIVE_AUDIO})])
async def test_fix_flow_aborts_when_agent_removed(
    hass: HomeAssistant,
    repairs: None,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    hass_client: ClientSessionGenerator,
) -> None:
    """The agent was deleted before the fix ran: abort, change nothing."""
    entry = setup_integration
    subentry_id = agent_subentry_id(entry)
    emulator.inject(not_found(NATIVE_AUDIO))
    await converse_fails(hass, "hello")
    assert hass.config_entries.async_remove_subentry(entry, subentry_id)
    await hass.async_block_till_done()

    client = await hass_client()
    flow = await start_fix_flow(client, DOMAIN, model_issue_id(subentry_id))
    assert flow["type"] == "abort"
    assert flow["reason"] == "agent_removed"


@pytest.mark.parametrize(
    "fault",
    [
        Fault("close", after_server_messages=0, code=1011, reason=QUOTA_REASON),  # at open
        Fault("close", on_turn=1, code=1011, reason=QUOTA_REASON),  # during the turn
    ],
    ids=["at_open", "during_turn"],
)
async def test_quota_issue_cleared_by_next_turn(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: LiveEmulator,
    fault: Fault,
) -> None:
    """1011 quota -> warning issue (not fixable); the next successful turn deletes it."""
    emulator.inject(fault)
    await converse_fails(hass, "hello")

    issue_id = quota_issue_id(setup_integration.entry_id)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_QUOTA_EXCEEDED
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable

    assert (await converse(hass, "hello again")).response.speech["plain"]["speech"]
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_other_errors_raise_no_issue(
    hass: HomeAssistant, setup_integration: MockConfigEntry, emulator: LiveEmulator
) -> None:
    """A permission error is reported to the caller only."""
    emulator.inject(
        Fault(
            "close",
            after_server_messages=0,
            code=1008,
            reason="The caller does not have permission",
        )
    )
    await converse_fails(hass, "hello")
    assert not [
        issue for (domain, _), issue in ir.async_get(hass).issues.items() if domain == DOMAIN
    ]


def test_issue_translations() -> None:
    """Every issue and fix-flow string exists, and en.json mirrors strings.json."""
    strings = json.loads((COMPONENT / "strings.json").read_text())
    english = json.loads((COMPONENT / "translations" / "en.json").read_text())
    assert strings == english
    issues = strings["issues"]
    assert {"title", "description"} <= set(issues["foreign_entry"])
    assert {"title", "description"} <= set(issues["quota_exceeded"])
    fix = issues["model_not_found"]["fix_flow"]
    assert {"title", "description"} <= set(fix["step"]["confirm"])
    assert "agent_removed" in fix["abort"]
    for placeholder in ("{model}", "{agent}", "{default_model}"):
        assert placeholder in fix["step"]["confirm"]["description"]
    mixed = issues["mixed_pipeline"]
    assert "title" in mixed
    assert {"title", "description"} <= set(mixed["fix_flow"]["step"]["confirm"])
    assert {"pipeline_removed", "pipeline_fixed", "agent_unavailable"} <= set(
        mixed["fix_flow"]["abort"]
    )
