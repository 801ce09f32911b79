"""Repair issues raised by Live session failures or split assistants, and their fix flows.

* ``model_not_found`` (per agent, fixable): the agent's model does not exist (any more) or does
  not support the Live API. The fix switches the agent to ``DEFAULT_MODEL``.
* ``quota_exceeded`` (per API key, warning, not fixable): the key's quota is exhausted. Deleted by
  the next successful turn.
* ``mixed_pipeline`` (per assistant, warning, fixable; kept up to date by assistant.py): the
  assistant uses our STT, conversation agent or TTS without the other two of the same agent. The
  fix makes it use all three of one agent.

The conversation agent calls ``async_report_error`` when a turn fails with a LiveError and
``async_clear_issues`` after a successful turn.
"""

from __future__ import annotations

from typing import Final

from homeassistant.components.assist_pipeline import async_get_pipelines
from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
import probatio as vol

from .assistant import (
    ISSUE_MIXED_PIPELINE,
    async_use_agent,
    fix_target,
    issue_placeholders,
    our_engines,
)
from .const import CONF_MODEL, DOMAIN, LOGGER
from .live.errors import LiveError, ModelNotFoundError, QuotaExceededError
from .live.models import DEFAULT_MODEL

ISSUE_MODEL_NOT_FOUND: Final = "model_not_found"
ISSUE_QUOTA_EXCEEDED: Final = "quota_exceeded"


def model_issue_id(subentry_id: str) -> str:
    """Issue id of the missing-model issue of one agent."""
    return f"{ISSUE_MODEL_NOT_FOUND}_{subentry_id}"


def quota_issue_id(entry_id: str) -> str:
    """Issue id of the quota issue of one API key (config entry)."""
    return f"{ISSUE_QUOTA_EXCEEDED}_{entry_id}"


@callback
def async_report_error(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry, err: LiveError
) -> None:
    """Raise the repair issue ``err`` calls for, if any (other errors are only logged)."""
    if isinstance(err, ModelNotFoundError):
        model = str(subentry.data.get(CONF_MODEL, DEFAULT_MODEL))
        LOGGER.error("Agent %s: the Live model %s is not available: %s", subentry.title, model, err)
        ir.async_create_issue(
            hass,
            DOMAIN,
            model_issue_id(subentry.subentry_id),
            is_fixable=model != DEFAULT_MODEL,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_MODEL_NOT_FOUND,
            translation_placeholders={
                "model": model,
                "agent": subentry.title,
                "default_model": DEFAULT_MODEL,
            },
            data={"entry_id": entry.entry_id, "subentry_id": subentry.subentry_id},
        )
    elif isinstance(err, QuotaExceededError):
        ir.async_create_issue(
            hass,
            DOMAIN,
            quota_issue_id(entry.entry_id),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_QUOTA_EXCEEDED,
            translation_placeholders={"title": entry.title},
            data={"entry_id": entry.entry_id},
        )


@callback
def async_clear_issues(hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry) -> None:
    """A turn succeeded: the key has quota and the agent's model works."""
    ir.async_delete_issue(hass, DOMAIN, quota_issue_id(entry.entry_id))
    ir.async_delete_issue(hass, DOMAIN, model_issue_id(subentry.subentry_id))


class ModelNotFoundRepairFlow(RepairsFlow):
    """Switch an agent whose model is gone to the default model."""

    def __init__(self, entry_id: str, subentry_id: str) -> None:
        """Remember which agent the issue is about."""
        super().__init__()
        self._entry_id = entry_id
        self._subentry_id = subentry_id

    def _target(self) -> tuple[ConfigEntry, ConfigSubentry] | None:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or (subentry := entry.subentries.get(self._subentry_id)) is None:
            return None
        return entry, subentry

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> RepairsFlowResult:
        """Start: confirm the switch."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Show what will change; on submit switch the agent's model."""
        if (target := self._target()) is None:
            return self.async_abort(reason="agent_removed")
        entry, subentry = target
        model = str(subentry.data.get(CONF_MODEL, DEFAULT_MODEL))
        if user_input is not None:
            self.hass.config_entries.async_update_subentry(
                entry, subentry, data={**subentry.data, CONF_MODEL: DEFAULT_MODEL}
            )
            LOGGER.info(
                "Agent %s switched from model %s to %s", subentry.title, model, DEFAULT_MODEL
            )
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders={
                "model": model,
                "agent": subentry.title,
                "default_model": DEFAULT_MODEL,
            },
        )


class MixedPipelineRepairFlow(RepairsFlow):
    """Make an assistant use one agent's STT, conversation agent and TTS."""

    def __init__(self, pipeline_id: str) -> None:
        """Remember which assistant the issue is about."""
        super().__init__()
        self._pipeline_id = pipeline_id

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> RepairsFlowResult:
        """Start: confirm the change."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Show which agent the assistant will use; on submit rewire it."""
        pipeline = next(
            (p for p in async_get_pipelines(self.hass) if p.id == self._pipeline_id), None
        )
        if pipeline is None:
            return self.async_abort(reason="pipeline_removed")
        ours = our_engines(self.hass)
        if (target := fix_target(ours, pipeline)) is None:
            return self.async_abort(reason="pipeline_fixed")
        placeholders = issue_placeholders(ours, pipeline, target)
        if user_input is not None:
            if not await async_use_agent(self.hass, pipeline, target):
                return self.async_abort(
                    reason="agent_unavailable", description_placeholders=placeholders
                )
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm", data_schema=vol.Schema({}), description_placeholders=placeholders
        )


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """Create the fix flow of a fixable issue (``model_not_found``, ``mixed_pipeline``)."""
    if issue_id.startswith(f"{ISSUE_MODEL_NOT_FOUND}_") and data is not None:
        return ModelNotFoundRepairFlow(str(data["entry_id"]), str(data["subentry_id"]))
    if issue_id.startswith(f"{ISSUE_MIXED_PIPELINE}_") and data is not None:
        return MixedPipelineRepairFlow(str(data["pipeline_id"]))
    raise ValueError(f"unknown fixable issue {issue_id}")
