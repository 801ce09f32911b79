"""A ready assistant per agent, and a repair when an assistant splits an agent's voice bridge.

Creating an agent (the first one, made with the config entry, or one added with "Add agent")
offers to create an Assist pipeline named after the agent, wired to that agent's conversation,
speech-to-text and text-to-speech entities in Home Assistant's language. The entities exist only
once the entry has (re)loaded with the new agent, so the flows only *request* an assistant
(:func:`async_request_assistant`) and :func:`async_create_requested_assistants` (called at the end
of ``async_setup_entry``) creates it. A request lives in memory: it is made right before the entry
(re)loads and consumed by that setup, or by the next successful one if that setup fails.

The three entities are one speech-to-speech bridge: an assistant that uses one of them without the
others, or mixes two agents, does not work. :func:`async_setup_pipeline_checks` keeps a repair
issue per such assistant up to date whenever assistants or entities change (fixable: the fix uses
one agent's three entities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from homeassistant.components import conversation, stt
from homeassistant.components.assist_pipeline import (
    Pipeline,
    async_create_default_pipeline,
    async_get_pipelines,
    async_update_pipeline,
)
from homeassistant.components.assist_pipeline.pipeline import async_setup_pipeline_store
from homeassistant.components.tts.helper import get_engine_instance as get_tts_engine
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_when_setup
from homeassistant.util import language as language_util
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN, LOGGER, SUBENTRY_AGENT

CONF_CREATE_ASSISTANT: Final = "create_assistant"
"""Flow field (not stored): create an assistant for the new agent."""
ASSIST_PIPELINE: Final = "assist_pipeline"
ISSUE_MIXED_PIPELINE: Final = "mixed_pipeline"
STT: Final = "stt"
CONVERSATION: Final = "conversation"
TTS: Final = "tts"
ENGINE_DOMAINS: Final = (STT, CONVERSATION, TTS)
NO_ENGINE: Final = "—"


@dataclass(frozen=True, slots=True)
class AssistantRequest:
    """A flow asked for an assistant for the agent ``name`` it is creating.

    ``known_subentry_ids`` are the entry's agents before that one: the requested agent is the
    new one with that title.
    """

    name: str
    known_subentry_ids: frozenset[str]


@dataclass(slots=True)
class _AssistantData:
    """Per-hass state: pending requests per entry, assistants being created, checks set up."""

    requests: dict[str, list[AssistantRequest]] = field(default_factory=dict)
    creating: set[str] = field(default_factory=set)  # pipeline names, skipped by the check
    checks_running: bool = False


DATA: HassKey[_AssistantData] = HassKey(f"{DOMAIN}_assistant")


def _data(hass: HomeAssistant) -> _AssistantData:
    if (data := hass.data.get(DATA)) is None:
        data = hass.data[DATA] = _AssistantData()
    return data


def mixed_issue_id(pipeline_id: str) -> str:
    """Issue id of the repair about one pipeline."""
    return f"{ISSUE_MIXED_PIPELINE}_{pipeline_id}"


@dataclass(frozen=True, slots=True)
class AgentEngine:
    """One of our engine entities: the agent it belongs to."""

    entry_id: str
    subentry_id: str
    agent: str


@callback
def our_engines(hass: HomeAssistant) -> dict[str, AgentEngine]:
    """Our STT/conversation/TTS entity ids -> their agent."""
    registry = er.async_get(hass)
    engines: dict[str, AgentEngine] = {}
    for entry in hass.config_entries.async_entries(DOMAIN):
        for reg_entry in er.async_entries_for_config_entry(registry, entry.entry_id):
            subentry_id = reg_entry.config_subentry_id
            if reg_entry.domain not in ENGINE_DOMAINS or subentry_id is None:
                continue
            subentry = entry.subentries.get(subentry_id)
            agent = subentry.title if subentry is not None else subentry_id
            engines[reg_entry.entity_id] = AgentEngine(entry.entry_id, subentry_id, agent)
    return engines


def _pipeline_engines(pipeline: Pipeline) -> dict[str, str | None]:
    return {
        STT: pipeline.stt_engine,
        CONVERSATION: pipeline.conversation_engine,
        TTS: pipeline.tts_engine,
    }


# ------------------------------------------------------------------------------------------------
# Creating the assistant
# ------------------------------------------------------------------------------------------------


@callback
def async_request_assistant(
    hass: HomeAssistant, entry_id: str, name: str, known_subentry_ids: frozenset[str]
) -> None:
    """Remember that the agent ``name`` being added to ``entry_id`` wants an assistant."""
    _data(hass).requests.setdefault(entry_id, []).append(AssistantRequest(name, known_subentry_ids))


async def async_create_requested_assistants(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Create the assistants requested for ``entry``'s agents (its entities must exist).

    Called when the entry has set up its platforms. Requests whose agent is gone are dropped.
    """
    requests = _data(hass).requests.pop(entry.entry_id, [])
    done: set[str] = set()
    for request in requests:
        subentry = next(
            (
                sub
                for sub in entry.subentries.values()
                if sub.subentry_type == SUBENTRY_AGENT
                and sub.title == request.name
                and sub.subentry_id not in request.known_subentry_ids
                and sub.subentry_id not in done
            ),
            None,
        )
        if subentry is None:
            LOGGER.debug("No new agent %s to create an assistant for", request.name)
            continue
        done.add(subentry.subentry_id)
        await async_create_assistant(hass, entry, subentry)


@callback
def agent_engines(hass: HomeAssistant, entry_id: str, subentry_id: str) -> dict[str, str]:
    """The agent's engine entity ids by domain (``stt``, ``conversation``, ``tts``)."""
    return {
        reg_entry.domain: reg_entry.entity_id
        for reg_entry in er.async_entries_for_config_entry(er.async_get(hass), entry_id)
        if reg_entry.config_subentry_id == subentry_id and reg_entry.domain in ENGINE_DOMAINS
    }


def _unique_pipeline_name(hass: HomeAssistant, name: str) -> str:
    """``name``, or ``name 2``, ``name 3``... if an assistant has it (satellites pick by name)."""
    taken = {pipeline.name for pipeline in async_get_pipelines(hass)}
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name} {number}"
    return candidate


def _conversation_language(hass: HomeAssistant, agent_id: str, language: str) -> str:
    """What HA's UI stores: ``*`` for an agent that speaks every language, else the best match."""
    languages = conversation.async_get_conversation_languages(hass, agent_id)
    if languages == MATCH_ALL:
        return MATCH_ALL
    matches = language_util.matches(language, languages, country=hass.config.country)
    return matches[0] if matches else language


async def async_create_assistant(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry
) -> Pipeline | None:
    """Create the assistant "<agent name>" with the agent's STT, conversation and TTS entities.

    Languages follow Home Assistant's language (``hass.config.language``), as HA's own default
    assistant does. Returns None (and logs why) if it cannot be created.
    """
    engines = agent_engines(hass, entry.entry_id, subentry.subentry_id)
    if set(engines) != set(ENGINE_DOMAINS):
        LOGGER.warning(
            "Cannot create an assistant for agent %s: its entities %s are missing",
            subentry.title,
            ", ".join(sorted(set(ENGINE_DOMAINS) - set(engines))),
        )
        return None
    await async_setup_pipeline_store(hass)
    data = _data(hass)
    name = _unique_pipeline_name(hass, subentry.title)
    data.creating.add(name)
    try:
        # HA's helper checks that both engines exist and speak HA's language, and picks the
        # STT/TTS language tags; the conversation agent is set right after.
        pipeline = await async_create_default_pipeline(
            hass, stt_engine_id=engines[STT], tts_engine_id=engines[TTS], pipeline_name=name
        )
        if pipeline is None:
            LOGGER.warning(
                "Cannot create an assistant for agent %s: %s or %s is not loaded or does not "
                "support the language %s",
                subentry.title,
                engines[STT],
                engines[TTS],
                hass.config.language,
            )
            return None
        await async_update_pipeline(
            hass,
            pipeline,
            conversation_engine=engines[CONVERSATION],
            conversation_language=_conversation_language(
                hass, engines[CONVERSATION], pipeline.language
            ),
        )
    finally:
        data.creating.discard(name)
    LOGGER.info("Created the assistant %s for agent %s", name, subentry.title)
    created = next(p for p in async_get_pipelines(hass) if p.id == pipeline.id)
    async_check_pipelines(hass)
    return created


def _best_language(hass: HomeAssistant, language: str, supported: list[str]) -> str | None:
    matches = language_util.matches(language, supported, country=hass.config.country)
    return matches[0] if matches else None


async def async_use_agent(hass: HomeAssistant, pipeline: Pipeline, engine: AgentEngine) -> bool:
    """Make ``pipeline`` use the STT, conversation agent and TTS of ``engine``'s agent.

    The pipeline keeps its name, language and wake word. False if that agent's entities are not
    loaded or do not speak the pipeline's language.
    """
    engines = agent_engines(hass, engine.entry_id, engine.subentry_id)
    if set(engines) != set(ENGINE_DOMAINS):
        return False
    stt_engine = stt.async_get_speech_to_text_engine(hass, engines[STT])
    tts_engine = get_tts_engine(hass, engines[TTS])
    if stt_engine is None or tts_engine is None:
        return False
    stt_language = _best_language(hass, pipeline.language, list(stt_engine.supported_languages))
    tts_language = _best_language(hass, pipeline.language, list(tts_engine.supported_languages))
    if stt_language is None or tts_language is None:
        return False
    await async_update_pipeline(
        hass,
        pipeline,
        stt_engine=engines[STT],
        stt_language=stt_language,
        conversation_engine=engines[CONVERSATION],
        conversation_language=_conversation_language(
            hass, engines[CONVERSATION], pipeline.language
        ),
        tts_engine=engines[TTS],
        tts_language=tts_language,
        tts_voice=None,
    )
    LOGGER.info("Assistant %s now uses agent %s", pipeline.name, engine.agent)
    return True


# ------------------------------------------------------------------------------------------------
# Keeping the repair issues up to date
# ------------------------------------------------------------------------------------------------


def fix_target(ours: dict[str, AgentEngine], pipeline: Pipeline) -> AgentEngine | None:
    """The agent a mixed pipeline should use: its conversation agent's, else its STT's or TTS's.

    None if the pipeline uses none of our engines (``ours``), or all three of one agent.
    """
    used = {role: ours.get(engine or "") for role, engine in _pipeline_engines(pipeline).items()}
    agents = {engine.subentry_id for engine in used.values() if engine is not None}
    if not agents or (len(agents) == 1 and all(used.values())):
        return None
    return used[CONVERSATION] or used[STT] or used[TTS]


def issue_placeholders(
    ours: dict[str, AgentEngine], pipeline: Pipeline, target: AgentEngine
) -> dict[str, str]:
    """The issue's and its fix flow's placeholders: the assistant, its engines, the fix's agent."""
    engines = _pipeline_engines(pipeline)
    return {
        "pipeline": pipeline.name,
        "stt": _describe(ours, engines[STT]),
        "conversation": _describe(ours, engines[CONVERSATION]),
        "tts": _describe(ours, engines[TTS]),
        "agent": target.agent,
        "language": pipeline.language,
    }


def _describe(ours: dict[str, AgentEngine], engine: str | None) -> str:
    """An engine for the issue text: its id, with the agent's name if it is ours."""
    if not engine:
        return NO_ENGINE
    if (our_engine := ours.get(engine)) is not None:
        return f"{engine} ({our_engine.agent})"
    return engine


@callback
def async_check_pipelines(hass: HomeAssistant) -> None:
    """Create or delete the "mixed pipeline" issue of every assistant."""
    if not (data := _data(hass)).checks_running:
        return
    ours = our_engines(hass)
    current: set[str] = set()
    for pipeline in async_get_pipelines(hass):
        if pipeline.name in data.creating:
            continue
        issue_id = mixed_issue_id(pipeline.id)
        if (target := fix_target(ours, pipeline)) is None:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
            continue
        current.add(issue_id)
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_MIXED_PIPELINE,
            translation_placeholders=issue_placeholders(ours, pipeline, target),
            data={"pipeline_id": pipeline.id},
        )
    # Issues of pipelines that were deleted.
    for domain, issue_id in list(ir.async_get(hass).issues):
        if (
            domain == DOMAIN
            and issue_id.startswith(f"{ISSUE_MIXED_PIPELINE}_")
            and issue_id not in current
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_setup_pipeline_checks(hass: HomeAssistant) -> None:
    """Keep the "mixed pipeline" issues up to date once assist_pipeline is set up."""

    async def _start(hass: HomeAssistant, _component: str) -> None:
        data = _data(hass)
        if data.checks_running:
            return
        pipeline_data = await async_setup_pipeline_store(hass)
        data.checks_running = True

        async def _pipelines_changed(*_args: object) -> None:
            async_check_pipelines(hass)

        @callback
        def _is_engine(event_data: er.EventEntityRegistryUpdatedData) -> bool:
            entity_ids = [event_data["entity_id"], str(event_data.get("old_entity_id", ""))]
            return any(e.partition(".")[0] in ENGINE_DOMAINS for e in entity_ids)

        @callback
        def _entities_changed(_event: Event[er.EventEntityRegistryUpdatedData]) -> None:
            async_check_pipelines(hass)

        pipeline_data.pipeline_store.async_add_change_set_listener(_pipelines_changed)
        hass.bus.async_listen(
            er.EVENT_ENTITY_REGISTRY_UPDATED, _entities_changed, event_filter=_is_engine
        )
        async_check_pipelines(hass)

    async_when_setup(hass, ASSIST_PIPELINE, _start)
