"""Constants for the Gemini Live integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "gemini_live"
LOGGER = logging.getLogger(__package__)

DEFAULT_TITLE: Final = "Gemini Live"

CONF_ENDPOINT: Final = "endpoint"
"""Optional websocket/REST base URL (an offline emulator or a proxy); empty means Google's."""
