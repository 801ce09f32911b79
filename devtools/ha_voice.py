"""Wire a :class:`~devtools.wyoming_satellite.FakeSatellite` into a running Home Assistant.

The satellite is added the way a user adds one: a ``wyoming`` config flow (user step,
host + port). Home Assistant's own wyoming integration then connects to it, creates an
``assist_satellite`` entity and a pipeline ``select`` for it. A pipeline made of any
STT / conversation / TTS engines is created with assist_pipeline's public helpers and
selected on that ``select``.

HA's wyoming satellite converts every TTS reply with ffmpeg, so :func:`setup_ffmpeg` points
HA's ffmpeg at the binary shipped by the ``imageio-ffmpeg`` package (CI has no system
ffmpeg); :func:`add_wyoming_satellite` calls it when ffmpeg is not set up yet.
"""

from __future__ import annotations

from dataclasses import dataclass
import os

from homeassistant.components import ffmpeg
from homeassistant.components.assist_pipeline import (
    async_create_default_pipeline,
    async_update_pipeline,
)
from homeassistant.components.assist_pipeline.pipeline import async_get_pipeline
from homeassistant.components.conversation import HOME_ASSISTANT_AGENT
from homeassistant.config_entries import SOURCE_USER, ConfigEntry, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

from devtools.wyoming_satellite import FakeSatellite

WYOMING_DOMAIN = "wyoming"
FFMPEG_DOMAIN = "ffmpeg"


def ffmpeg_binary() -> str:
    """The ffmpeg to use: ``$GEMINI_LIVE_FFMPEG`` if set, else imageio-ffmpeg's binary.

    CI machines have no system ffmpeg; imageio-ffmpeg ships one in its wheel. Benchmarks set
    ``GEMINI_LIVE_FFMPEG`` to a distribution's ffmpeg (closer to what HA OS ships).
    """
    if override := os.environ.get("GEMINI_LIVE_FFMPEG"):
        return override
    import imageio_ffmpeg  # type: ignore[import-untyped]  # noqa: PLC0415 - test-only dep

    path: str = imageio_ffmpeg.get_ffmpeg_exe()
    return path


async def setup_ffmpeg(hass: HomeAssistant) -> str:
    """Set up HA's ``ffmpeg`` integration with the imageio-ffmpeg binary; return its path.

    Must run before anything that depends on ffmpeg (wyoming, or a TTS conversion) sets
    ffmpeg up with the default ``ffmpeg`` from PATH; raises if that already happened.
    """
    path = ffmpeg_binary()
    assert await async_setup_component(hass, FFMPEG_DOMAIN, {FFMPEG_DOMAIN: {"ffmpeg_bin": path}})
    binary = ffmpeg.get_ffmpeg_manager(hass).binary
    if binary != path:
        raise RuntimeError(f"ffmpeg was already set up with {binary!r}; call setup_ffmpeg first")
    return path


async def add_wyoming_satellite(
    hass: HomeAssistant, sat: FakeSatellite, *, wait_connected: bool = True, within: float = 10.0
) -> ConfigEntry:
    """Add ``sat`` through the wyoming config flow; wait until HA sent ``run-satellite``."""
    if FFMPEG_DOMAIN not in hass.config.components:
        await setup_ffmpeg(hass)
    result = await hass.config_entries.flow.async_init(
        WYOMING_DOMAIN,
        context={"source": SOURCE_USER},
        data={CONF_HOST: sat.host, CONF_PORT: sat.port},
    )
    if result["type"] is not FlowResultType.CREATE_ENTRY:
        raise RuntimeError(f"wyoming config flow did not create an entry: {result}")
    entry = result["result"]
    await hass.async_block_till_done()
    if entry.state is not ConfigEntryState.LOADED:
        raise RuntimeError(f"wyoming entry for {sat.host}:{sat.port} is {entry.state}")
    if wait_connected:
        await sat.wait_connected(within)
    return entry


async def remove_wyoming_satellite(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Unload the satellite's entry (HA sends ``pause-satellite`` and disconnects)."""
    if entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


def _entity_id(hass: HomeAssistant, platform: str, entry: ConfigEntry, key: str) -> str:
    # HA's wyoming satellite id is the config entry id; unique ids are "<id>-<key>".
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, WYOMING_DOMAIN, f"{entry.entry_id}-{key}"
    )
    if entity_id is None:
        raise LookupError(f"no {platform} entity {key!r} for wyoming entry {entry.entry_id}")
    return entity_id


def satellite_entity_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The satellite's ``assist_satellite.*`` entity id."""
    return _entity_id(hass, "assist_satellite", entry, "assist_satellite")


def pipeline_select_entity_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The satellite's pipeline ``select.*`` entity id (options are pipeline names)."""
    return _entity_id(hass, "select", entry, "pipeline")


def satellite_device_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The satellite's device id (the ``device_id`` its pipeline runs carry)."""
    registry_entry = er.async_get(hass).async_get(satellite_entity_id(hass, entry))
    if registry_entry is None or registry_entry.device_id is None:
        raise LookupError(f"no device for wyoming entry {entry.entry_id}")
    return registry_entry.device_id


async def create_pipeline(
    hass: HomeAssistant,
    *,
    stt_engine: str,
    tts_engine: str,
    conversation_engine: str = HOME_ASSISTANT_AGENT,
    language: str = "en",
    conversation_language: str | None = None,
    stt_language: str | None = None,
    tts_language: str | None = None,
    tts_voice: str | None = None,
    name: str = "Satellite test pipeline",
) -> str:
    """Create an Assist pipeline from entity ids / agent id and return its id.

    Uses ``async_create_default_pipeline`` (which validates that the STT and TTS engines
    exist and support HA's language) and ``async_update_pipeline`` for the rest. Names
    should be unique: satellites select pipelines by name.
    """
    assert await async_setup_component(hass, "assist_pipeline", {})
    pipeline = await async_create_default_pipeline(
        hass, stt_engine_id=stt_engine, tts_engine_id=tts_engine, pipeline_name=name
    )
    if pipeline is None:
        raise ValueError(
            f"cannot create pipeline {name!r}: {stt_engine} / {tts_engine} not found or "
            f"without a language matching {hass.config.language!r}"
        )
    await async_update_pipeline(
        hass,
        pipeline,
        conversation_engine=conversation_engine,
        conversation_language=conversation_language or language,
        language=language,
        stt_language=stt_language or language,
        tts_language=tts_language or language,
        tts_voice=tts_voice,
    )
    return pipeline.id


async def use_pipeline(hass: HomeAssistant, sat_entry: ConfigEntry, pipeline_id: str) -> None:
    """Select pipeline ``pipeline_id`` on the satellite's pipeline select entity."""
    await select_pipeline(hass, pipeline_select_entity_id(hass, sat_entry), pipeline_id)


async def select_pipeline(hass: HomeAssistant, entity_id: str, pipeline_id: str) -> None:
    """Select pipeline ``pipeline_id`` on a satellite's pipeline ``select`` entity (checked)."""
    pipeline = async_get_pipeline(hass, pipeline_id)
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": entity_id, "option": pipeline.name},
        blocking=True,
    )
    state = hass.states.get(entity_id)
    if state is None or state.state != pipeline.name:
        raise RuntimeError(f"{entity_id} did not select {pipeline.name!r}: {state}")


@dataclass(frozen=True, slots=True)
class SatelliteWiring:
    """What :func:`wire_satellite` set up."""

    entry: ConfigEntry
    pipeline_id: str
    satellite_entity_id: str
    pipeline_select_entity_id: str
    device_id: str


async def wire_satellite(
    hass: HomeAssistant,
    sat: FakeSatellite,
    *,
    stt_engine: str,
    tts_engine: str,
    conversation_engine: str = HOME_ASSISTANT_AGENT,
    language: str = "en",
    pipeline_name: str = "Satellite test pipeline",
) -> SatelliteWiring:
    """Add ``sat`` to HA, create a pipeline and select it for the satellite.

    The caller unloads ``wiring.entry`` (:func:`remove_wyoming_satellite`) before stopping
    ``sat``.
    """
    pipeline_id = await create_pipeline(
        hass,
        stt_engine=stt_engine,
        tts_engine=tts_engine,
        conversation_engine=conversation_engine,
        language=language,
        name=pipeline_name,
    )
    entry = await add_wyoming_satellite(hass, sat)
    await use_pipeline(hass, entry, pipeline_id)
    return SatelliteWiring(
        entry=entry,
        pipeline_id=pipeline_id,
        satellite_entity_id=satellite_entity_id(hass, entry),
        pipeline_select_entity_id=pipeline_select_entity_id(hass, entry),
        device_id=satellite_device_id(hass, entry),
    )
