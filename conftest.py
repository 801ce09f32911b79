"""Load pytest-homeassistant-custom-component (phcc) on every Home Assistant version we test.

This is the one place for the workarounds phcc needs until it has a release for the Home
Assistant version under test (phcc 0.13.375 pins 2026.10.4; CI also runs 2026.11.0). Drop each
one when phcc catches up:

1. HA 2026.11's ``homeassistant/__init__.py`` calls ``httpx2.alias_httpx()``, which raises when
   ``httpx`` was imported first, and phcc's plugin imports ``respx`` (hence ``httpx``) before
   ``homeassistant``. pyproject's ``addopts`` disables phcc's auto-loaded entry point
   (``-p no:homeassistant``); this root conftest imports ``homeassistant`` and then loads phcc's
   plugin module itself (``pytest_plugins`` below).
2. phcc's ``common.py`` imports ``_clear_logger_overwrites`` from
   ``homeassistant.components.logger``; 2026.11 moved it to ``logger/helpers.py`` and no longer
   re-exports it. It is re-exported here when missing.
"""

from __future__ import annotations

import homeassistant  # noqa: F401 - first: HA 2026.11 aliases httpx -> httpx2 on import
from homeassistant.components import logger as _logger_component

if not hasattr(_logger_component, "_clear_logger_overwrites"):  # HA 2026.11+
    from homeassistant.components.logger.helpers import _clear_logger_overwrites

    _logger_component._clear_logger_overwrites = _clear_logger_overwrites  # type: ignore[attr-defined]

pytest_plugins = ["pytest_homeassistant_custom_component.plugins"]
