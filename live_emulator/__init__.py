"""Protocol-faithful offline emulator of the Gemini Live API server (tests and the offline demo)."""

from .config import EmulatorConfig
from .faults import Fault
from .records import ConnectionRecord, TokenRecord, ToolResponseRecord
from .scenario import Scenario
from .server import LiveEmulator

__all__ = [
    "ConnectionRecord",
    "EmulatorConfig",
    "Fault",
    "LiveEmulator",
    "Scenario",
    "TokenRecord",
    "ToolResponseRecord",
]
