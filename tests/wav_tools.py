"""WAV reading for tests: check what the integration streams (no Home Assistant imports)."""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from custom_components.gemini_live.live.pcm import (
    STREAMING_SIZE,
    WAVE_FORMAT_IEEE_FLOAT,
    WAVE_FORMAT_PCM,
    BytesLike,
)

WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
_KSDATAFORMAT_SUFFIX: Final = bytes.fromhex("000000001000800000aa00389b71")


class WavData(NamedTuple):
    """Result of :func:`parse_wav` (unpacks as ``rate, channels, sample_width, fmt_tag, pcm``)."""

    rate: int
    channels: int
    sample_width: int
    """Bytes per sample (per channel)."""
    format_tag: int
    """1 (PCM integer) or 3 (IEEE float); WAVE_FORMAT_EXTENSIBLE is resolved to its subformat."""
    pcm: bytes
    """The sample data (whole frames only)."""


def parse_wav(data: BytesLike) -> WavData:
    """Parse a RIFF/WAVE file held in memory; return its format and sample bytes.

    Supports integer PCM (tag 1), IEEE float (tag 3) and WAVE_FORMAT_EXTENSIBLE wrapping either
    (reported as its subformat tag). Unknown chunks (``LIST``, ``fact``, ``bext``, ...) are
    skipped, before or after ``data``. A ``data`` size of 0xFFFFFFFF, or 0 in a file whose RIFF
    size is 0/0xFFFFFFFF (streaming headers), means "to the end of the input"; the result is
    trimmed to whole frames. Raises ``ValueError`` with a specific message for anything
    malformed or unsupported (truncated chunks, missing ``fmt``/``data``, bad format fields).
    """
    view = memoryview(data).cast("B")
    total = len(view)
    if total < 12:
        raise ValueError(f"not a WAV file: only {total} bytes")
    magic, riff_size, wave = struct.unpack_from("<4sI4s", view, 0)
    if magic == b"RIFX":
        raise ValueError("big-endian RIFX WAV files are not supported")
    if magic == b"RF64":
        raise ValueError("RF64 WAV files are not supported")
    if magic != b"RIFF" or wave != b"WAVE":
        raise ValueError("not a WAV file: missing RIFF/WAVE signature")
    streaming = riff_size in (0, STREAMING_SIZE)
    fmt: tuple[int, int, int, int, int] | None = None  # tag, channels, rate, block_align, width
    pos = 12
    while pos + 8 <= total:
        chunk_id, size = struct.unpack_from("<4sI", view, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            if body + size > total:
                raise ValueError("truncated 'fmt ' chunk")
            fmt = _parse_fmt(view[body : body + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("'data' chunk before any 'fmt ' chunk")
            tag, channels, rate, block_align, width = fmt
            if size == STREAMING_SIZE or (size == 0 and streaming):
                end = body + (total - body) // block_align * block_align
            else:
                end = body + size
                if end > total:
                    raise ValueError(
                        f"truncated 'data' chunk: header says {size} bytes, {total - body} present"
                    )
                if size % block_align:
                    raise ValueError(
                        f"'data' size {size} is not a whole number of {block_align}-byte frames"
                    )
            return WavData(rate, channels, width, tag, bytes(view[body:end]))
        elif body + size > total:
            raise ValueError(f"truncated {chunk_id!r} chunk")
        pos = body + size + (size & 1)
    if fmt is None:
        raise ValueError("no 'fmt ' chunk")
    raise ValueError("no 'data' chunk")


def _parse_fmt(body: memoryview) -> tuple[int, int, int, int, int]:
    """Validate a ``fmt `` chunk body; return (tag, channels, rate, block_align, sample_width)."""
    if len(body) < 16:
        raise ValueError(f"'fmt ' chunk too short ({len(body)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body, 0)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise ValueError("WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too short")
        guid = bytes(body[24:40])
        if guid[2:] != _KSDATAFORMAT_SUFFIX:
            raise ValueError("WAVE_FORMAT_EXTENSIBLE with an unknown subformat GUID")
        tag = int.from_bytes(guid[:2], "little")
    if tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
        raise ValueError(f"unsupported WAV format tag 0x{tag:04x} (only PCM and IEEE float)")
    if channels == 0:
        raise ValueError("WAV header declares 0 channels")
    if rate == 0:
        raise ValueError("WAV header declares a 0 Hz sample rate")
    if bits == 0 or bits % 8:
        raise ValueError(f"unsupported bits per sample: {bits}")
    width = bits // 8
    if tag == WAVE_FORMAT_IEEE_FLOAT and width not in (4, 8):
        raise ValueError(f"IEEE float WAV with {bits}-bit samples")
    if block_align != channels * width:
        raise ValueError(f"block align {block_align} != channels {channels} x {width} bytes")
    return tag, channels, rate, block_align, width
