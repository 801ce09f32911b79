"""Home Assistant LLM tools on a Live session.

- ``ToolSet``: every tool of the selected LLM APIs becomes a Gemini function declaration (schema
  via ``probatio.to_openapi`` trimmed to Gemini's subset, names made valid for Gemini and mapped
  back exactly), plus our own ``look_at_camera``.
- The behaviour/scheduling policy (documented in the README, configurable per agent):

  =====================  =========================================  ========================
  tool                   behaviour (model with async calls)          response scheduling
  =====================  =========================================  ========================
  action (not read-only) NON_BLOCKING (policy "auto")               success -> ``success``
                                                                    (default SILENT),
                                                                    failure -> ``failure``
                                                                    (default INTERRUPT)
  query (read-only)      BLOCKING: the user is waiting for it        none (answered at once)
  policy "blocking"      BLOCKING for every tool                     none
  model without async    BLOCKING (nothing else is accepted)         none
  =====================  =========================================  ========================

- ``ToolRunner``: runs calls as entry background tasks with a timeout, each call id at most once;
  every outcome (errors included: unknown tool, invalid arguments, exceptions, timeouts) is
  answered to the model, and ``toolCallCancellation`` cancels the HA task (never answered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
import contextlib
from dataclasses import dataclass
import hashlib
import re
from typing import Any, Final

from homeassistant.components.homeassistant.exposed_entities import async_should_expose
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import llm
import probatio

from ..const import LOGGER
from ..live.messages import (
    Behavior,
    FunctionCall,
    FunctionDeclaration,
    FunctionResult,
    JsonObject,
    MediaResolution,
    Scheduling,
)
from ..live.models import ModelCapabilities

LOOK_AT_CAMERA: Final = "look_at_camera"
NAME_MAX: Final = 64
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")
SUPPORTED_SCHEMA_KEYS: Final = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "items",
    }
)
# Longest image side sent to the model per media resolution (the model samples it down anyway).
IMAGE_SIDE: Final = {
    MediaResolution.LOW: 512,
    MediaResolution.MEDIUM: 768,
    MediaResolution.HIGH: 1024,
}


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """How calls behave and how their responses are scheduled."""

    non_blocking_actions: bool = True
    success: Scheduling = Scheduling.SILENT
    failure: Scheduling = Scheduling.INTERRUPT
    timeout: float = 30.0


# ------------------------------------------------------------------------------------------------
# Declarations
# ------------------------------------------------------------------------------------------------


def gemini_name(name: str, taken: Iterable[str] = ()) -> str:
    """A valid, unique Gemini function name for an HA tool name."""
    clean = _INVALID_CHARS.sub("_", name)
    if not clean or not (clean[0].isalpha() or clean[0] == "_"):
        clean = f"_{clean}"
    taken = set(taken)
    if len(clean) <= NAME_MAX and clean not in taken:
        return clean
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{clean[: NAME_MAX - 9]}_{digest}"


def format_schema(schema: Mapping[str, Any]) -> JsonObject:
    """Trim an OpenAPI 3.0 schema to what Gemini accepts (as core's Google integration does)."""
    if subschemas := schema.get("allOf") or schema.get("anyOf"):
        typed = [s for s in subschemas if "type" in s]
        return format_schema(typed[0] if typed else subschemas[0])
    result: JsonObject = {}
    kind = schema.get("type")
    formats = {
        "string": ("enum", "date-time"),
        "number": ("float", "double"),
        "integer": ("int32", "int64"),
    }
    for key, raw in schema.items():
        if key not in SUPPORTED_SCHEMA_KEYS:
            continue
        val: Any = raw
        if key == "type":
            val = str(raw).upper()
        elif key == "format" and raw not in formats.get(str(kind), ()):
            continue
        elif key == "items":
            val = format_schema(raw)
        elif key == "properties":
            val = {k: format_schema(v) for k, v in raw.items()}
        result[key] = val
    if result.get("enum") and result.get("type") != "STRING":
        result["type"] = "STRING"
        result["enum"] = [str(item) for item in result["enum"]]
    if result.get("type") == "OBJECT" and not result.get("properties"):
        result["properties"] = {"json": {"type": "STRING"}}
        result["required"] = []
    return result


@dataclass(frozen=True, slots=True)
class _Entry:
    ha_name: str
    tool: llm.Tool | None  # None: one of our local tools
    behavior: Behavior
    read_only: bool


class ToolSet:
    """The function declarations of one Live session, mapped back to HA tools."""

    def __init__(
        self,
        hass: HomeAssistant,
        llm_api: llm.APIInstance | None,
        caps: ModelCapabilities,
        policy: ToolPolicy,
        *,
        cameras: Iterable[str] = (),
        media_resolution: MediaResolution | None = None,
    ) -> None:
        """Build declarations for ``llm_api``'s tools and the exposed ``cameras``."""
        self.hass = hass
        self._media_resolution = media_resolution  # sizes camera images
        self.llm_api = llm_api
        self.policy = policy
        self.caps = caps
        self._by_gemini: dict[str, _Entry] = {}
        self.declarations: list[FunctionDeclaration] = []
        for tool in llm_api.tools if llm_api else ():
            parameters = None
            if tool.parameters.schema:
                serializer = llm_api.custom_serializer if llm_api else None
                parameters = format_schema(
                    probatio.to_openapi(
                        tool.parameters, custom_serializer=serializer, openapi_version="3.0"
                    )
                )
            self._declare(tool.name, tool, tool.description or "", parameters, tool.annotations)
        camera_ids = sorted(cameras)
        if camera_ids:
            self._declare(
                LOOK_AT_CAMERA,
                None,
                "Look at a camera: its current image is sent to you as video input. Use it to "
                "answer questions about what a camera sees.",
                {
                    "type": "OBJECT",
                    "properties": {"camera": {"type": "STRING", "enum": camera_ids}},
                    "required": ["camera"],
                },
                llm.ToolAnnotations(read_only=True, destructive=False, open_world=False),
            )

    def _declare(
        self,
        ha_name: str,
        tool: llm.Tool | None,
        description: str,
        parameters: JsonObject | None,
        annotations: llm.ToolAnnotations,
    ) -> None:
        name = gemini_name(ha_name, self._by_gemini)
        behavior = self._behavior(annotations)
        self._by_gemini[name] = _Entry(ha_name, tool, behavior, bool(annotations.read_only))
        self.declarations.append(
            FunctionDeclaration(
                name,
                description,
                parameters,
                behavior if self.caps.non_blocking else None,
            )
        )

    def _behavior(self, annotations: llm.ToolAnnotations) -> Behavior:
        if not self.caps.blocking:
            return Behavior.NON_BLOCKING  # asynchronous calls only (background reasoning)
        if (
            self.caps.non_blocking
            and self.policy.non_blocking_actions
            and not annotations.read_only
        ):
            return Behavior.NON_BLOCKING
        return Behavior.BLOCKING

    def ha_name(self, gemini: str) -> str | None:
        """The HA tool name of a declared function (None if the model made it up)."""
        entry = self._by_gemini.get(gemini)
        return entry.ha_name if entry else None

    def behavior(self, gemini: str) -> Behavior:
        """Declared behaviour of a function."""
        entry = self._by_gemini.get(gemini)
        return entry.behavior if entry else Behavior.BLOCKING

    def scheduling(self, gemini: str, *, error: bool) -> Scheduling | None:
        """Response scheduling for a call's outcome (NON_BLOCKING calls only).

        A model that reasons in the background (asynchronous calls only) answers when its tools
        are done: its results are never SILENT, or the user would hear only its filler.
        """
        if self.behavior(gemini) is not Behavior.NON_BLOCKING:
            return None
        scheduling = self.policy.failure if error else self.policy.success
        if self.caps.background_reasoning and scheduling is Scheduling.SILENT:
            return Scheduling.WHEN_IDLE
        if not self.caps.blocking and self._read_only(gemini):
            return Scheduling.WHEN_IDLE  # a query: the answer depends on it
        return scheduling

    def _read_only(self, gemini: str) -> bool:
        entry = self._by_gemini.get(gemini)
        return entry is not None and entry.read_only

    async def execute(
        self, call: FunctionCall, send_video: Callable[[bytes], Awaitable[None]]
    ) -> llm.ToolResult:
        """Run one call. Never raises for bad calls: they become error results."""
        entry = self._by_gemini.get(call.name)
        if entry is None:
            return _error(f"Unknown function {call.name!r}", "UnknownTool")
        if entry.tool is None:
            return await self._look_at_camera(call.args, send_video)
        if self.llm_api is None:  # pragma: no cover - entries only exist with an API
            return _error("No LLM API configured", "NoApi")
        try:
            args = entry.tool.parameters(call.args)  # not every tool validates its arguments
            return await self.llm_api.async_call_tool(
                llm.ToolInput(tool_name=entry.ha_name, tool_args=args, id=call.id)
            )
        except probatio.Invalid as err:
            return _error(f"Invalid arguments: {err}", "InvalidArguments")
        except HomeAssistantError as err:
            return _error(str(err) or type(err).__name__, type(err).__name__)

    async def _look_at_camera(
        self, args: Mapping[str, Any], send_video: Callable[[bytes], Awaitable[None]]
    ) -> llm.ToolResult:
        entity_id = str(args.get("camera", ""))
        if not entity_id.startswith("camera.") or not async_should_expose(
            self.hass, "conversation", entity_id
        ):
            return _error(f"{entity_id!r} is not an exposed camera", "InvalidArguments")
        side = IMAGE_SIDE.get(self._media_resolution or MediaResolution.MEDIUM)
        from homeassistant.components import camera  # noqa: PLC0415 - only when used

        try:
            image = await camera.async_get_image(self.hass, entity_id, width=side)
        except HomeAssistantError as err:
            return _error(f"Could not get an image from {entity_id}: {err}", "CameraError")
        if image.content_type != "image/jpeg":
            return _error(f"{entity_id} did not return a JPEG image", "CameraError")
        await send_video(image.content)
        return llm.ToolResult(
            {"success": True, "camera": entity_id, "note": "The current image was sent to you."}
        )


def _error(message: str, kind: str) -> llm.ToolResult:
    return llm.ToolResult({"error": kind, "error_text": message}, error=True)


def exposed_cameras(hass: HomeAssistant) -> list[str]:
    """Camera entities exposed to Assist."""
    return [
        state.entity_id
        for state in hass.states.async_all("camera")
        if async_should_expose(hass, "conversation", state.entity_id)
    ]


# ------------------------------------------------------------------------------------------------
# Execution
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """A finished call, reported to whoever records the conversation."""

    call: FunctionCall
    ha_name: str
    result: llm.ToolResult
    scheduling: Scheduling | None


class ToolRunner:
    """Runs a conversation's function calls in Home Assistant, each call id at most once.

    Each call runs as a background task of the config entry (unloading the entry cancels it),
    with the policy's timeout; every outcome, errors included, goes to ``on_outcome``. A call
    the model cancels is cancelled in HA and never answered.
    """

    def __init__(
        self,
        entry: ConfigEntry[Any],
        tools: ToolSet,
        send_video: Callable[[bytes], Awaitable[None]],
        on_outcome: Callable[[ToolOutcome], Awaitable[None]],
    ) -> None:
        """``send_video`` sends a frame to the model; ``on_outcome`` answers it."""
        self._entry = entry
        self.tools = tools
        self._send_video = send_video
        self._on_outcome = on_outcome
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._seen: set[str] = set()

    @property
    def running(self) -> int:
        """Calls still running."""
        return len(self._tasks)

    def start(self, call: FunctionCall) -> None:
        """Run ``call`` (a call id seen before is never run again)."""
        if call.id in self._seen:
            LOGGER.warning("Ignoring a second call with id %s", call.id)
            return
        self._seen.add(call.id)
        task = self._entry.async_create_background_task(
            self.tools.hass, self._run(call), f"gemini_live_tool_{call.name}", eager_start=False
        )
        self._tasks[call.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(call.id, None))

    async def _run(self, call: FunctionCall) -> None:
        ha_name = self.tools.ha_name(call.name) or call.name
        try:
            async with asyncio.timeout(self.tools.policy.timeout):
                result = await self.tools.execute(call, self._send_video)
        except TimeoutError:
            result = _error(
                f"{ha_name} did not finish within {self.tools.policy.timeout:g} s", "Timeout"
            )
        except asyncio.CancelledError:
            raise
        except Exception as err:
            LOGGER.exception("Tool %s raised", ha_name)
            result = _error(str(err) or type(err).__name__, type(err).__name__)
        self._tasks.pop(call.id, None)  # finished: no longer running
        scheduling = self.tools.scheduling(call.name, error=result.error)
        await self._on_outcome(ToolOutcome(call, ha_name, result, scheduling))

    def cancel(self, ids: Iterable[str]) -> None:
        """The model cancelled these calls: stop them; they are never answered."""
        for call_id in ids:
            if task := self._tasks.pop(call_id, None):
                task.cancel()

    async def aclose(self) -> None:
        """Cancel every running call and wait for them."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def result_payload(outcome: ToolOutcome) -> FunctionResult:
    """The function response for an outcome."""
    data = outcome.result.data
    response = dict(data) if isinstance(data, Mapping) else {"result": data}
    return FunctionResult(outcome.call.id, outcome.call.name, response, outcome.scheduling)
