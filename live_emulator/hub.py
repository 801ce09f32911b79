"""What one connection needs from the emulator that owns it.

``session.Session`` depends on this protocol only and ``server.LiveEmulator`` implements it, so
the two modules do not import each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .config import EmulatorConfig
    from .faults import Fault
    from .records import ResumableState
    from .scenario import ScenarioTurn


class Hub(Protocol):
    """The emulator-wide state and services a connection uses."""

    config: EmulatorConfig

    def claim_faults(self) -> list[Fault]:
        """Hand the pending and persistent faults to a new connection."""
        ...

    def key_ok(self, key: str) -> bool:
        """Whether an API key is accepted."""
        ...

    def next_transcript(self) -> str:
        """Consume and return the transcript of the next audio utterance."""
        ...

    def peek_transcript(self) -> str:
        """The transcript the next audio utterance will have, without consuming it."""
        ...

    def scenario_peek(self) -> ScenarioTurn | None:
        """The next unconsumed scenario turn, if any."""
        ...

    def store_state(self, state: ResumableState) -> None:
        """Remember the state a resumption handle restores."""
        ...

    def resume_state(self, handle: str) -> ResumableState:
        """Return the state for a handle or raise the server's close error."""
        ...

    def apply_token(
        self, credential: str | None, setup: dict[str, Any], *, resuming: bool
    ) -> dict[str, Any]:
        """Check an ephemeral token and return the effective setup with its locks applied."""
        ...

    def consume_token(self, credential: str | None, *, resuming: bool) -> None:
        """Count a new session against an ephemeral token."""
        ...
