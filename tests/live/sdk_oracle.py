"""The google-genai SDK's pydantic types as a conformance oracle for Live frames (test-only)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from google.genai import _live_converters, types


class EmuSetup(types.LiveClientSetup):
    """LiveClientSetup lacks realtime_input_config (live-protocol.md): add it."""

    realtime_input_config: types.RealtimeInputConfig | None = None


class EmuClientMessage(types.LiveClientMessage):
    """LiveClientMessage whose setup accepts realtime_input_config."""

    setup: EmuSetup | None = None  # type: ignore[assignment]


def _check_enums(model: Any, path: str = "") -> None:
    """Invalid enum strings only warn in the SDK: make them fail here."""
    if isinstance(model, types._common.BaseModel):
        for name in type(model).model_fields:
            _check_enums(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            _check_enums(item, f"{path}[{i}]")
    elif isinstance(model, Enum):
        assert model.value in {m.value for m in type(model)}, f"{path}: bad enum {model!r}"
    elif isinstance(model, str) and path.endswith(
        ("scheduling", "behavior", "activity_handling", "turn_coverage", "media_resolution")
    ):
        raise AssertionError(f"{path}: enum value {model!r} was not recognised by the SDK")


def validate_client(frame: dict[str, Any]) -> EmuClientMessage:
    """Validate one client frame strictly (extra fields forbidden, enums checked)."""
    msg = EmuClientMessage.model_validate(frame, strict=False)
    _check_enums(msg)
    return msg


def validate_server(frame: dict[str, Any]) -> types.LiveServerMessage:
    """Validate one server frame as the SDK's ``receive()`` reads it, strictly.

    The SDK first converts the wire shape (``_LiveServerMessage_from_mldev``): a key it would
    drop there fails here, and so does an unknown field after it.
    """
    converted = _live_converters._LiveServerMessage_from_mldev(frame)
    assert len(converted) == len(frame), f"the SDK would drop part of {sorted(frame)}"
    if "voiceActivity" in frame:
        assert set(frame["voiceActivity"]) <= {"type", "audioOffset"}
    msg = types.LiveServerMessage.model_validate(converted)
    _check_enums(msg)
    return msg
