"""Wire an :class:`~devtools.esphome_satellite.EsphomeSatellite` into a running Home Assistant.

The device is added the way a user adds one: the ``esphome`` config flow's user step (host and
port), then the encryption key step when the device speaks Noise. Home Assistant's own esphome
integration then keeps a connection to it, creates the ``assist_satellite`` entity, a pipeline
``select`` and the ``media_player``; :func:`use_pipeline` selects a pipeline on that select.

The device fetches its replies and announcements from Home Assistant over HTTP, as a real one
does, so :func:`serve_http` makes HA's HTTP server really listen on 127.0.0.1 and points
``internal_url`` at it (the URLs HA hands to devices are absolute). HA converts those replies
with ffmpeg: :func:`add_esphome_satellite` sets HA's ffmpeg up with imageio-ffmpeg's binary
(:func:`devtools.ha_voice.setup_ffmpeg`) when nothing did yet.

Under pytest-homeassistant-custom-component the HTTP server is patched out by its autouse
``disable_http_server`` fixture and zeroconf/bluetooth must be mocked
(``mock_async_zeroconf``, ``enable_bluetooth``); see ``tests/esphome/conftest.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import socket

from homeassistant.config_entries import SOURCE_USER, ConfigEntry, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

from devtools.esphome_satellite import EsphomeSatellite
from devtools.ha_voice import FFMPEG_DOMAIN, select_pipeline, setup_ffmpeg

ESPHOME_DOMAIN = "esphome"
CONF_NOISE_PSK = "noise_psk"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def serve_http(hass: HomeAssistant, host: str = "127.0.0.1") -> str:
    """Make HA's HTTP server listen on ``host`` and set ``internal_url``; return the base URL.

    Sets ``http`` up on a free port if nothing did yet, and starts serving if it does not
    (HA starts it only with ``frontend`` or at start-up, which tests do not go through).
    """
    if "http" not in hass.config.components:
        assert await async_setup_component(
            hass, "http", {"http": {"server_host": [host], "server_port": _free_port(host)}}
        )
        await _confirm_http_config(hass)
    server = hass.http
    if server.runner is None:
        await server.start()
    base = f"http://{host}:{server.server_port}"
    if hass.config.internal_url != base:
        await hass.config.async_update(internal_url=base)
    return base


async def _confirm_http_config(hass: HomeAssistant) -> None:
    """Confirm the HTTP config we just applied, as a user does once HA answers on it.

    HA 2026.10+ applies a new HTTP config as a trial and, unless confirmed within 5 minutes,
    reverts it with a restart (which a long benchmark would otherwise run into).
    """
    try:
        from homeassistant.components.http.config import (  # noqa: PLC0415 - 2026.10+ only
            async_get_and_load_store,
        )
    except ImportError:
        return
    store = await async_get_and_load_store(hass)
    if store.pending is not None:
        await store.async_promote_pending()


async def add_esphome_satellite(
    hass: HomeAssistant, device: EsphomeSatellite, *, within: float = 30.0
) -> ConfigEntry:
    """Add ``device`` through the esphome config flow; wait until its satellite is up.

    Up means: HA subscribed to the device's voice assistant and the ``assist_satellite``
    entity exists and is available.
    """
    if FFMPEG_DOMAIN not in hass.config.components:
        await setup_ffmpeg(hass)
    await serve_http(hass)
    result = await hass.config_entries.flow.async_init(
        ESPHOME_DOMAIN, context={"source": SOURCE_USER}
    )
    if result["type"] is not FlowResultType.FORM or result["step_id"] != "user":
        raise RuntimeError(f"esphome config flow did not start with the user step: {result}")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: device.host, CONF_PORT: device.port}
    )
    if result["type"] is FlowResultType.FORM and result["step_id"] == "encryption_key":
        if device.noise_psk is None:
            raise RuntimeError("HA asks for an encryption key but the device has none")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_NOISE_PSK: device.noise_psk}
        )
    if result["type"] is not FlowResultType.CREATE_ENTRY:
        raise RuntimeError(f"esphome config flow did not create an entry: {result}")
    entry = result["result"]
    await device.wait_connected(within)
    await wait_satellite_available(hass, entry, within=within)
    if entry.state is not ConfigEntryState.LOADED:
        raise RuntimeError(f"esphome entry for {device.host}:{device.port} is {entry.state}")
    return entry


async def wait_satellite_available(
    hass: HomeAssistant, entry: ConfigEntry, *, within: float = 30.0
) -> str:
    """Wait (bounded) until the entry's ``assist_satellite`` entity is available; return it."""
    async with asyncio.timeout(within):
        while True:
            entity_id = _find_entity_id(hass, entry, "assist_satellite", "-assist_satellite")
            state = hass.states.get(entity_id) if entity_id else None
            if state is not None and state.state != STATE_UNAVAILABLE:
                assert entity_id is not None
                return entity_id
            await asyncio.sleep(0.02)


async def remove_esphome_satellite(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Unload the device's entry (HA disconnects from it)."""
    if entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


def _find_entity_id(
    hass: HomeAssistant, entry: ConfigEntry, platform: str, unique_suffix: str
) -> str | None:
    for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id):
        if entity.domain == platform and entity.unique_id.endswith(unique_suffix):
            return entity.entity_id
    return None


def _entity_id(hass: HomeAssistant, entry: ConfigEntry, platform: str, unique_suffix: str) -> str:
    entity_id = _find_entity_id(hass, entry, platform, unique_suffix)
    if entity_id is None:
        raise LookupError(f"no {platform} entity *{unique_suffix} for esphome entry {entry.title}")
    return entity_id


def satellite_entity_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The device's ``assist_satellite.*`` entity id."""
    return _entity_id(hass, entry, "assist_satellite", "-assist_satellite")


def pipeline_select_entity_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The device's (first) pipeline ``select.*`` entity id (options are pipeline names)."""
    return _entity_id(hass, entry, "select", "-pipeline")


def media_player_entity_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The device's ``media_player.*`` entity id."""
    return _entity_id(hass, entry, "media_player", "-media_player")


def device_id(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The device registry id of the device (what its pipeline runs carry)."""
    registry_entry = er.async_get(hass).async_get(satellite_entity_id(hass, entry))
    if registry_entry is None or registry_entry.device_id is None:
        raise LookupError(f"no device for esphome entry {entry.title}")
    return registry_entry.device_id


async def use_pipeline(hass: HomeAssistant, entry: ConfigEntry, pipeline_id: str) -> None:
    """Select pipeline ``pipeline_id`` on the device's pipeline select."""
    await select_pipeline(hass, pipeline_select_entity_id(hass, entry), pipeline_id)


@dataclass(frozen=True, slots=True)
class EsphomeWiring:
    """What :func:`wire_esphome_satellite` set up."""

    entry: ConfigEntry
    pipeline_id: str
    satellite_entity_id: str
    pipeline_select_entity_id: str
    media_player_entity_id: str | None
    device_id: str


async def wire_esphome_satellite(
    hass: HomeAssistant, device: EsphomeSatellite, pipeline_id: str, *, within: float = 30.0
) -> EsphomeWiring:
    """Add ``device`` to HA and select ``pipeline_id`` for it.

    The caller unloads ``wiring.entry`` (:func:`remove_esphome_satellite`) before stopping
    ``device``.
    """
    entry = await add_esphome_satellite(hass, device, within=within)
    await use_pipeline(hass, entry, pipeline_id)
    return EsphomeWiring(
        entry=entry,
        pipeline_id=pipeline_id,
        satellite_entity_id=satellite_entity_id(hass, entry),
        pipeline_select_entity_id=pipeline_select_entity_id(hass, entry),
        media_player_entity_id=_find_entity_id(hass, entry, "media_player", "-media_player"),
        device_id=device_id(hass, entry),
    )
