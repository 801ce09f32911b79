"""Print the pip requirements of the Home Assistant core integrations our tests set up.

Read from the installed Home Assistant's own manifests (following their dependencies), so the
pins always match the HA version phcc installed.
"""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant import components

# Core integrations the test-suite and the demo set up (their dependencies are followed).
ROOTS = (
    "assist_pipeline",
    "assist_satellite",
    "camera",
    "conversation",
    "esphome",
    "ffmpeg",
    "frontend",
    "hassio",  # esphome -> bluetooth -> usb imports its models (HA 2026.11)
    "light",
    "media_player",
    "stt",
    "tts",
    "wyoming",
)


# Pins this machine's package index does not have, and the nearest release that it has.
# HA 2026.11.0's esphome pins aioesphomeapi 46.25.0; the index stops at 46.23.0, which already has
# everything HA 2026.11's esphome code imports (SerialProxyIdentity & co.). Drop when available.
UNAVAILABLE_PINS = {"aioesphomeapi==46.25.0": "aioesphomeapi==46.23.0"}


def main() -> None:
    base = Path(next(iter(components.__path__)))
    seen: set[str] = set()
    reqs: list[str] = []
    todo = list(ROOTS)
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = json.loads((base / domain / "manifest.json").read_text())
        reqs.extend(r for r in manifest.get("requirements", []) if r not in reqs)
        todo.extend(manifest.get("dependencies", []))
    print(" ".join(sorted(UNAVAILABLE_PINS.get(req, req) for req in reqs)))


if __name__ == "__main__":
    main()
