"""Resumption handles of an entry's conversations, persisted so a later turn resumes context.

The newest handle of each conversation is kept (also across restarts) for the 2 h the Live
service honours it; saving is batched.
"""

from __future__ import annotations

import time
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from ..const import HANDLE_VALIDITY_S, STORAGE_KEY, STORAGE_VERSION


class HandleStore:
    """Newest resumption handle per (agent, conversation), valid for 2 h."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Prepare the store of one config entry."""
        self._store: Store[dict[str, dict[str, Any]]] = Store(
            hass, STORAGE_VERSION, f"{STORAGE_KEY}.{entry_id}", private=True
        )
        self._data: dict[str, dict[str, Any]] = {}

    async def async_load(self) -> None:
        """Load and drop expired handles."""
        self._data = (await self._store.async_load()) or {}
        self._prune()

    def _prune(self) -> None:
        now = time.time()
        self._data = {
            key: item
            for key, item in self._data.items()
            if now - float(item.get("updated", 0)) < HANDLE_VALIDITY_S
        }

    def get(self, key: str) -> str | None:
        """A still valid handle for ``key``."""
        item = self._data.get(key)
        if item and time.time() - float(item["updated"]) < HANDLE_VALIDITY_S:
            return str(item["handle"])
        return None

    def count(self, prefix: str = "") -> int:
        """How many still valid handles have keys starting with ``prefix`` (diagnostics)."""
        now = time.time()
        return sum(
            1
            for key, item in self._data.items()
            if key.startswith(prefix) and now - float(item["updated"]) < HANDLE_VALIDITY_S
        )

    @callback
    def set(self, key: str, handle: str) -> None:
        """Remember ``handle`` (saved shortly after, batched)."""
        self._data[key] = {"handle": handle, "updated": time.time()}
        self._store.async_delay_save(self._snapshot, 1.0)

    @callback
    def discard(self, key: str) -> None:
        """Forget a handle the server refused."""
        if self._data.pop(key, None) is not None:
            self._store.async_delay_save(self._snapshot, 1.0)

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        self._prune()
        return dict(self._data)

    async def async_flush(self) -> None:
        """Write now (on unload)."""
        await self._store.async_save(self._snapshot())

    async def async_remove(self) -> None:
        """Delete the stored handles (the entry was removed)."""
        self._data = {}
        await self._store.async_remove()
