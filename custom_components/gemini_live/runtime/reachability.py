"""Whether the Live service can be reached: logged once when it stops, once when it is back.

One per config entry (one API key, one endpoint), shared by its agents. Every Live session
that opens reports success; every session that cannot open (or loses its connection and cannot
reconnect) reports the failure. Turns still fail one by one with their translated error; the
log says it once, as HA's ``log-when-unavailable`` rule asks.
"""

from __future__ import annotations

from ..const import LOGGER
from ..live.errors import CannotConnectError, LiveError


class Reachability:
    """The Live service's reachability as the last session open saw it."""

    def __init__(self) -> None:
        """Start reachable (the entry's setup has just reached the service)."""
        self._unreachable = False

    def connected(self) -> None:
        """A session opened: log once if the service was unreachable."""
        if self._unreachable:
            self._unreachable = False
            LOGGER.info("The Gemini Live service can be reached again")

    def failed(self, err: LiveError) -> bool:
        """A session failed with ``err``: True if the cause is the service being unreachable.

        The first such failure is logged as a warning; later ones are the caller's to log at
        debug level until the service is back.
        """
        if not isinstance(err, CannotConnectError):
            return False
        if not self._unreachable:
            self._unreachable = True
            LOGGER.warning("The Gemini Live service cannot be reached: %s", err)
        return True
