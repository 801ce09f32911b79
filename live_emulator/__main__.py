"""Command line: ``python -m live_emulator --host 127.0.0.1 --port PORT``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .config import EmulatorConfig
from .scenario import Scenario
from .server import LiveEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m live_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--api-key", action="append", dest="api_keys", help="accepted key (repeatable)"
    )
    parser.add_argument("--scenario", help="scenario JSON file")
    parser.add_argument("--pace", type=float, default=1.0, help="1 = real time, 0 = no pacing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run the emulator until SIGINT or SIGTERM."""
    config = EmulatorConfig(
        api_keys=frozenset(args.api_keys) if args.api_keys else None,
        pace=args.pace,
        seed=args.seed,
        scenario=Scenario.load(args.scenario) if args.scenario else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with LiveEmulator(config, host=args.host, port=args.port) as emu:
        print(f"Live emulator serving {emu.ws_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
