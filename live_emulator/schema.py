"""Proto-JSON validation of client messages, the way Google's JSON front end parses them.

Field names are accepted in lowerCamelCase and snake_case; the result uses lowerCamelCase keys.
Unknown fields, wrong JSON types and invalid enum values raise :class:`ProtocolError` carrying
the close code and reason the real server uses.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
import re
from typing import Any

from .errors import INVALID_ARGUMENT, ProtocolError


@dataclass(frozen=True)
class F:
    """One field of a message: its kind, referenced message or enum, and whether repeated."""

    kind: str  # msg | enum | str | int | float | bool | bytes | any | map | empty
    ref: str = ""
    repeated: bool = False


def _rep(kind: str, ref: str = "") -> F:
    return F(kind, ref, repeated=True)


ENUMS: dict[str, tuple[str, ...]] = {
    "Modality": ("MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO", "VIDEO"),
    "MediaResolution": (
        "MEDIA_RESOLUTION_UNSPECIFIED",
        "MEDIA_RESOLUTION_LOW",
        "MEDIA_RESOLUTION_MEDIUM",
        "MEDIA_RESOLUTION_HIGH",
    ),
    "ThinkingLevel": ("THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH"),
    "Behavior": ("UNSPECIFIED", "BLOCKING", "NON_BLOCKING"),
    "Scheduling": ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT"),
    "Type": (
        "TYPE_UNSPECIFIED",
        "STRING",
        "NUMBER",
        "INTEGER",
        "BOOLEAN",
        "ARRAY",
        "OBJECT",
        "NULL",
    ),
    "StartSensitivity": (
        "START_SENSITIVITY_UNSPECIFIED",
        "START_SENSITIVITY_HIGH",
        "START_SENSITIVITY_LOW",
    ),
    "EndSensitivity": (
        "END_SENSITIVITY_UNSPECIFIED",
        "END_SENSITIVITY_HIGH",
        "END_SENSITIVITY_LOW",
    ),
    "ActivityHandling": (
        "ACTIVITY_HANDLING_UNSPECIFIED",
        "START_OF_ACTIVITY_INTERRUPTS",
        "NO_INTERRUPTION",
    ),
    "TranscriptionMode": ("MODE_UNSPECIFIED", "VERBATIM", "SMART"),
    "TurnCoverage": (
        "TURN_COVERAGE_UNSPECIFIED",
        "TURN_INCLUDES_ONLY_ACTIVITY",
        "TURN_INCLUDES_ALL_INPUT",
        "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
    ),
}

MESSAGES: dict[str, dict[str, F]] = {
    "ClientMessage": {
        "setup": F("msg", "Setup"),
        "clientContent": F("msg", "ClientContent"),
        "realtimeInput": F("msg", "RealtimeInput"),
        "toolResponse": F("msg", "ToolResponse"),
    },
    "Setup": {
        "model": F("str"),
        "generationConfig": F("msg", "GenerationConfig"),
        "systemInstruction": F("msg", "Content"),
        "tools": _rep("msg", "Tool"),
        "realtimeInputConfig": F("msg", "RealtimeInputConfig"),
        "sessionResumption": F("msg", "SessionResumptionConfig"),
        "contextWindowCompression": F("msg", "ContextWindowCompressionConfig"),
        "inputAudioTranscription": F("msg", "AudioTranscriptionConfig"),
        "outputAudioTranscription": F("msg", "AudioTranscriptionConfig"),
        "proactivity": F("msg", "ProactivityConfig"),
        "historyConfig": F("msg", "HistoryConfig"),
        "explicitVadSignal": F("bool"),
        "safetySettings": _rep("any"),
        "avatarConfig": F("any"),
    },
    "GenerationConfig": {
        "candidateCount": F("int"),
        "maxOutputTokens": F("int"),
        "temperature": F("float"),
        "topP": F("float"),
        "topK": F("int"),
        "presencePenalty": F("float"),
        "frequencyPenalty": F("float"),
        "responseModalities": _rep("enum", "Modality"),
        "speechConfig": F("msg", "SpeechConfig"),
        "mediaResolution": F("enum", "MediaResolution"),
        "seed": F("int"),
        "thinkingConfig": F("msg", "ThinkingConfig"),
        "enableAffectiveDialog": F("bool"),
        "stopSequences": _rep("str"),
        "responseMimeType": F("str"),
        "responseSchema": F("msg", "Schema"),
        "responseJsonSchema": F("any"),
        "responseLogprobs": F("bool"),
        "logprobs": F("int"),
        "enableEnhancedCivicAnswers": F("bool"),
        "translationConfig": F("any"),
    },
    "SpeechConfig": {
        "voiceConfig": F("msg", "VoiceConfig"),
        "languageCode": F("str"),
        "multiSpeakerVoiceConfig": F("any"),
    },
    "VoiceConfig": {
        "prebuiltVoiceConfig": F("msg", "PrebuiltVoiceConfig"),
        "replicatedVoiceConfig": F("any"),
    },
    "PrebuiltVoiceConfig": {"voiceName": F("str")},
    "ThinkingConfig": {
        "includeThoughts": F("bool"),
        "thinkingBudget": F("int"),
        "thinkingLevel": F("enum", "ThinkingLevel"),
    },
    "Content": {"role": F("str"), "parts": _rep("msg", "Part")},
    "Part": {
        "text": F("str"),
        "thought": F("bool"),
        "thoughtSignature": F("bytes"),
        "inlineData": F("msg", "Blob"),
        "fileData": F("msg", "FileData"),
        "functionCall": F("msg", "FunctionCall"),
        "functionResponse": F("msg", "FunctionResponse"),
        "executableCode": F("any"),
        "codeExecutionResult": F("any"),
        "videoMetadata": F("any"),
        "mediaResolution": F("any"),
    },
    "Blob": {"mimeType": F("str"), "data": F("bytes")},
    "FileData": {"mimeType": F("str"), "fileUri": F("str")},
    "FunctionCall": {"id": F("str"), "name": F("str"), "args": F("any")},
    "FunctionResponse": {
        "id": F("str"),
        "name": F("str"),
        "response": F("any"),
        "scheduling": F("enum", "Scheduling"),
        "willContinue": F("bool"),
        "parts": _rep("any"),
    },
    "Tool": {
        "functionDeclarations": _rep("msg", "FunctionDeclaration"),
        "googleSearch": F("msg", "GoogleSearch"),
        "codeExecution": F("any"),
        "urlContext": F("any"),
        "googleSearchRetrieval": F("any"),
        "googleMaps": F("any"),
        "computerUse": F("any"),
        "fileSearch": F("any"),
    },
    "GoogleSearch": {"timeRangeFilter": F("any"), "excludeDomains": _rep("str")},
    "FunctionDeclaration": {
        "name": F("str"),
        "description": F("str"),
        "behavior": F("enum", "Behavior"),
        "parameters": F("msg", "Schema"),
        "parametersJsonSchema": F("any"),
        "response": F("msg", "Schema"),
        "responseJsonSchema": F("any"),
    },
    "Schema": {
        "type": F("enum", "Type"),
        "format": F("str"),
        "title": F("str"),
        "description": F("str"),
        "nullable": F("bool"),
        "enum": _rep("str"),
        "maxItems": F("int"),
        "minItems": F("int"),
        "properties": F("map", "Schema"),
        "propertyOrdering": _rep("str"),
        "required": _rep("str"),
        "minProperties": F("int"),
        "maxProperties": F("int"),
        "minLength": F("int"),
        "maxLength": F("int"),
        "pattern": F("str"),
        "example": F("any"),
        "anyOf": _rep("msg", "Schema"),
        "minimum": F("float"),
        "maximum": F("float"),
        "default": F("any"),
        "items": F("msg", "Schema"),
        "additionalProperties": F("any"),
        "defs": F("map", "Schema"),
        "ref": F("str"),
    },
    "RealtimeInputConfig": {
        "automaticActivityDetection": F("msg", "AutomaticActivityDetection"),
        "activityHandling": F("enum", "ActivityHandling"),
        "turnCoverage": F("enum", "TurnCoverage"),
    },
    "AutomaticActivityDetection": {
        "disabled": F("bool"),
        "startOfSpeechSensitivity": F("enum", "StartSensitivity"),
        "endOfSpeechSensitivity": F("enum", "EndSensitivity"),
        "prefixPaddingMs": F("int"),
        "silenceDurationMs": F("int"),
    },
    "SessionResumptionConfig": {"handle": F("str"), "transparent": F("bool")},
    "ContextWindowCompressionConfig": {
        "triggerTokens": F("int"),
        "slidingWindow": F("msg", "SlidingWindow"),
    },
    "SlidingWindow": {"targetTokens": F("int")},
    "AudioTranscriptionConfig": {
        "languageCodes": _rep("str"),
        "languageAuto": F("empty"),
        "languageHints": F("msg", "LanguageHints"),
        "customVocabulary": _rep("str"),
        "adaptationPhrases": _rep("str"),
        "wordTimestamp": F("bool"),
        "diarization": F("bool"),
        "mode": F("enum", "TranscriptionMode"),
        "sourceText": F("str"),
    },
    "LanguageHints": {"languageCodes": _rep("str")},
    "ProactivityConfig": {"proactiveAudio": F("bool"), "proactiveVideo": F("bool")},
    "HistoryConfig": {"initialHistoryInClientContent": F("bool")},
    "ClientContent": {"turns": _rep("msg", "Content"), "turnComplete": F("bool")},
    "RealtimeInput": {
        "mediaChunks": _rep("msg", "Blob"),
        "audio": F("msg", "Blob"),
        "video": F("msg", "Blob"),
        "text": F("str"),
        "activityStart": F("empty"),
        "activityEnd": F("empty"),
        "audioStreamEnd": F("bool"),
    },
    "ToolResponse": {"functionResponses": _rep("msg", "FunctionResponse")},
}

_TYPE_NAMES = {
    "str": "TYPE_STRING",
    "int": "TYPE_INT64",
    "float": "TYPE_FLOAT",
    "bool": "TYPE_BOOL",
    "bytes": "TYPE_BYTES",
}


def camel(name: str) -> str:
    """Return the lowerCamelCase form of a snake_case field name."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def snake(name: str) -> str:
    """Return the snake_case form of a lowerCamelCase field name (Google's error paths use it)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def decode_bytes(value: str) -> bytes:
    """Decode proto-JSON bytes: standard or URL-safe base64, padding optional."""
    cleaned = value.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def _invalid_value(path: str, type_name: str, value: Any) -> ProtocolError:
    shown = value if isinstance(value, str) else repr(value)
    return ProtocolError(1007, f"Invalid value at '{path}' ({type_name}), {shown}")


def _scalar(spec: F, value: Any, path: str) -> Any:
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise _invalid_value(path, "TYPE_STRING", value)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _invalid_value(path, "TYPE_BOOL", value)
        return value
    if kind == "int":
        if isinstance(value, bool):
            raise _invalid_value(path, "TYPE_INT64", value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise _invalid_value(path, "TYPE_INT64", value)
    if kind == "float":
        if isinstance(value, bool):
            raise _invalid_value(path, "TYPE_FLOAT", value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _invalid_value(path, "TYPE_FLOAT", value)
    if kind == "bytes":
        if not isinstance(value, str):
            raise _invalid_value(path, "TYPE_BYTES", value)
        try:
            decode_bytes(value)
        except binascii.Error, ValueError:
            short = value if len(value) <= 16 else value[:16] + "..."
            raise ProtocolError(
                1007,
                f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{short}\"",
            ) from None
        return value
    if kind == "enum":
        names = ENUMS[spec.ref]
        if isinstance(value, bool):
            raise ProtocolError(1007, INVALID_ARGUMENT)
        if isinstance(value, int) and 0 <= value < len(names):
            return names[value]
        if isinstance(value, str) and value in names:
            return value
        raise ProtocolError(1007, INVALID_ARGUMENT)
    if kind == "empty":
        if not isinstance(value, dict):
            raise _invalid_value(path, "TYPE_MESSAGE", value)
        if value:
            name = next(iter(value))
            raise ProtocolError(
                1007,
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': "
                "Cannot find field.",
            )
        return {}
    raise AssertionError(kind)  # pragma: no cover


def _value(spec: F, value: Any, path: str) -> Any:
    if spec.kind == "msg":
        return normalize(spec.ref, value, path)
    if spec.kind == "map":
        if not isinstance(value, dict):
            raise _invalid_value(path, "TYPE_MESSAGE", value)
        return {k: normalize(spec.ref, v, f"{path}[{k}]") for k, v in value.items()}
    return _scalar(spec, value, path)


def normalize(message: str, value: Any, path: str = "") -> dict[str, Any]:
    """Validate ``value`` as proto message ``message`` and return it with camelCase keys.

    ``path`` is the snake_case field path used in error messages ("" for the root).
    """
    if not isinstance(value, dict):
        raise ProtocolError(
            1007,
            f"Invalid JSON payload received. Expected an object at '{path or message}'.",
        )
    fields = MESSAGES[message]
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = camel(key) if isinstance(key, str) else ""
        spec = fields.get(name)
        if spec is None:
            where = f" at '{path}'" if path else ""
            raise ProtocolError(
                1007,
                f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.',
            )
        if name in out:
            raise ProtocolError(1007, INVALID_ARGUMENT)
        sub = f"{path}.{snake(name)}" if path else snake(name)
        if item is None:
            continue
        if spec.repeated:
            if not isinstance(item, list):
                raise _invalid_value(sub, "TYPE_LIST", item)
            out[name] = [_value(spec, v, f"{sub}[{i}]") for i, v in enumerate(item)]
        else:
            out[name] = _value(spec, item, sub)
    return out
