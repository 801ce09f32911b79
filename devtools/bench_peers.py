"""Benchmark peers in a process of their own: the Live emulator and N satellites.

In a Home Assistant load benchmark the Live service and the satellites are other machines:
run in HA's process (even in another thread: one GIL) their work would be counted as HA's
event-loop lag and added latency. :class:`PeerProcess` runs one of the services below in a
spawned child process with its own event loop and calls its async methods over a pipe;
``time.perf_counter()`` is the system's monotonic clock, so the timestamps the child returns
compare with the parent's.

- :class:`EmulatorPeer`: a :class:`~live_emulator.LiveEmulator`; sets scenarios, reports the
  first reply audio frame of each utterance by transcript.
- :class:`SatellitePeer`: Wyoming (:class:`~devtools.wyoming_satellite.FakeSatellite`) or ESPHome
  (:class:`~devtools.esphome_satellite.EsphomeSatellite`) satellites; runs them all at once.
  :class:`RemoteSatellite` is what HA's config-flow helpers in ``devtools.ha_voice`` /
  ``devtools.ha_esphome`` need of a satellite (host, port, PSK, ``wait_connected``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any, Protocol

from live_emulator import EmulatorConfig, LiveEmulator, Scenario

_START_TIMEOUT = 60.0


class _Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _child_main(kind: str, kwargs: dict[str, Any], conn: Connection) -> None:
    asyncio.run(_serve(kind, kwargs, conn))


async def _serve(kind: str, kwargs: dict[str, Any], conn: Connection) -> None:
    service: _Service = _SERVICES[kind](**kwargs)
    await service.start()
    conn.send(("ok", None))
    loop = asyncio.get_running_loop()
    try:
        while True:
            method, args = await loop.run_in_executor(None, conn.recv)
            if method == "stop":
                break
            try:
                result = await getattr(service, method)(*args)
            except Exception as err:
                conn.send(("error", f"{method}: {err!r}"))
            else:
                conn.send(("ok", result))
    finally:
        await service.stop()
        conn.send(("ok", None))


class PeerProcess:
    """A service (``"emulator"`` or ``"satellites"``) in a spawned process; ``await call(...)``.

    Calls are made one at a time (a lock orders them).
    """

    def __init__(self, service: str, **kwargs: Any) -> None:
        """Describe the service (keyword arguments go to its constructor, pickled)."""
        self._kind = service
        self._kwargs = kwargs
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Spawn the process and wait until the service is started."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_child_main, args=(self._kind, self._kwargs, child), daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent
        await self._receive(_START_TIMEOUT)

    async def _receive(self, within: float) -> Any:
        conn = self._conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, conn.poll, within)
        if not ready:
            raise TimeoutError(f"{self._kind} peer did not answer within {within} s")
        status, value = conn.recv()
        if status != "ok":
            raise RuntimeError(f"{self._kind} peer: {value}")
        return value

    async def call(self, method: str, *args: Any, within: float = 120.0) -> Any:
        """Call ``await service.<method>(*args)`` in the child; return its (pickled) result."""
        async with self._lock:
            assert self._conn is not None
            self._conn.send((method, args))
            return await self._receive(within)

    async def stop(self) -> None:
        """Stop the service and end the process."""
        process, conn = self._process, self._conn
        if process is None or conn is None:
            return
        with contextlib.suppress(Exception):
            await self.call("stop", within=15.0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, process.join, 5.0)
        if process.is_alive():
            process.terminate()
            await loop.run_in_executor(None, process.join, 5.0)
        conn.close()
        self._process = self._conn = None


# -- the emulator ---------------------------------------------------------------------------------


class EmulatorPeer:
    """The Live emulator (child side)."""

    def __init__(self, config: EmulatorConfig) -> None:
        """Create the emulator on 127.0.0.1 (free port)."""
        self.emulator = LiveEmulator(config, host="127.0.0.1", port=0)

    async def start(self) -> None:
        """Start listening."""
        await self.emulator.start()

    async def stop(self) -> None:
        """Stop."""
        await self.emulator.stop()

    async def http_url(self) -> str:
        """The emulator's base URL."""
        return self.emulator.http_url

    async def set_scenario(self, scenario: dict[str, Any] | None) -> None:
        """Play this scenario (``Scenario.from_dict`` form) from now on.

        Its replies are synthesized now (:meth:`LiveEmulator.prepare_speech`): N sessions
        answering at once then each start at once, as from a real server, instead of queueing
        behind each other's synthesis in this process and taking CPU from HA at reply time.
        """
        parsed = None if scenario is None else Scenario.from_dict(scenario)
        if parsed is not None:
            self.emulator.prepare_speech(parsed.said_texts())
        self.emulator.config.scenario = parsed

    async def first_audio_by_transcript(self, after: float) -> dict[str, float]:
        """Transcript of the last utterance -> first reply audio frame written, per connection.

        Only connections that sent reply audio after ``after`` (perf_counter) count.
        """
        firsts: dict[str, float] = {}
        for conn in self.emulator.connections:
            at = conn.first_audio_sent_at(after=after)
            if at is not None and conn.utterances:
                transcript = str(conn.utterances[-1]["transcript"])
                if transcript in firsts:
                    raise ValueError(f"two connections answered {transcript!r}")
                firsts[transcript] = at
        return firsts


# -- the satellites -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one satellite observed of one run (perf_counter times)."""

    transcript: str | None
    first_audio_at: float | None
    speech_end_sent_at: float | None
    ok: bool
    summary: str


class SatellitePeer:
    """Satellites of one kind, ``"wyoming"`` or ``"esphome"`` (child side)."""

    def __init__(self, kind: str) -> None:
        """No satellites yet (:meth:`add`)."""
        if kind not in ("wyoming", "esphome"):
            raise ValueError(kind)
        self.kind = kind
        self.satellites: list[Any] = []
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Stop every satellite."""
        await self._stack.aclose()

    async def add(self) -> tuple[str, int, str | None]:
        """Start one more satellite; return (host, port, noise PSK)."""
        k = len(self.satellites) + 1
        sat: Any
        if self.kind == "wyoming":
            from devtools.wyoming_satellite import FakeSatellite  # noqa: PLC0415

            sat = FakeSatellite(name=f"Satellite {k}")
            psk = None
        else:
            from devtools.esphome_satellite import EsphomeSatellite  # noqa: PLC0415

            psk = EsphomeSatellite.new_psk()
            sat = EsphomeSatellite(
                name=f"home-assistant-voice-{k:06x}",
                friendly_name=f"Home Assistant Voice {k}",
                noise_psk=psk,
            )
        await self._stack.enter_async_context(sat)
        self.satellites.append(sat)
        return sat.host, sat.port, psk

    async def wait_connected(self, index: int, within: float) -> None:
        """Wait until HA connected to satellite ``index`` (0-based)."""
        await self.satellites[index].wait_connected(within)

    async def run_all(self, count: int, pcm16k: bytes, run_timeout: float) -> list[RunSummary]:
        """The first ``count`` satellites start a run at the same moment (real-time speech)."""
        # ESPHome devices each say their own wake word: HA drops a wake-up with the same
        # phrase as another device's moments before ("duplicate_wake_up_detected").
        extra: list[dict[str, Any]] = [
            {"wake_word_phrase": f"Okay Nabu {k}"} if self.kind == "esphome" else {}
            for k in range(count)
        ]
        handles = await asyncio.gather(
            *(
                sat.start_run(pcm16k, realtime=True, run_timeout=run_timeout, **extra[k])
                for k, sat in enumerate(self.satellites[:count])
            )
        )
        results = await asyncio.gather(*(handle.wait() for handle in handles))
        summaries = []
        for result in results:
            if self.kind == "wyoming":
                transcript, ok = result.transcript, not result.errors and result.ok
            else:
                transcript, ok = result.stt_text, result.ok
            summaries.append(
                RunSummary(
                    transcript=transcript,
                    first_audio_at=result.first_audio_at,
                    speech_end_sent_at=result.speech_end_sent_at,
                    ok=bool(ok),
                    summary=result.summary(),
                )
            )
        return summaries


_SERVICES: dict[str, Any] = {"emulator": EmulatorPeer, "satellites": SatellitePeer}


class RemoteSatellite:
    """A satellite in a :class:`SatellitePeer`, as HA's config-flow helpers see one."""

    def __init__(
        self, peer: PeerProcess, index: int, host: str, port: int, psk: str | None
    ) -> None:
        """Address satellite ``index`` of ``peer``."""
        self.peer = peer
        self.index = index
        self.host = host
        self.port = port
        self.noise_psk = psk

    async def wait_connected(self, within: float = 10.0) -> None:
        """Wait until HA connected to it."""
        await self.peer.call("wait_connected", self.index, within, within=within + 5)


class RemoteEmulator:
    """An :class:`EmulatorPeer` in its own process (``async with``), parent side."""

    def __init__(self, config: EmulatorConfig) -> None:
        """Describe the emulator."""
        self.peer = PeerProcess("emulator", config=config)
        self.http_url = ""

    async def __aenter__(self) -> RemoteEmulator:
        """Start the process and the emulator."""
        await self.peer.start()
        self.http_url = await self.peer.call("http_url")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the emulator and its process."""
        await self.peer.stop()

    async def set_scenario(self, scenario: dict[str, Any] | None) -> None:
        """See :meth:`EmulatorPeer.set_scenario`."""
        await self.peer.call("set_scenario", scenario)

    async def first_audio_by_transcript(self, after: float) -> dict[str, float]:
        """See :meth:`EmulatorPeer.first_audio_by_transcript`."""
        firsts: dict[str, float] = await self.peer.call("first_audio_by_transcript", after)
        return firsts


class RemoteSatellites:
    """A :class:`SatellitePeer` in its own process (``async with``), parent side."""

    def __init__(self, kind: str) -> None:
        """Describe the satellites."""
        self.kind = kind
        self.peer = PeerProcess("satellites", kind=kind)
        self.added: list[RemoteSatellite] = []

    async def __aenter__(self) -> RemoteSatellites:
        """Start the process."""
        await self.peer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the satellites and their process."""
        await self.peer.stop()

    async def add(self) -> RemoteSatellite:
        """Start one more satellite in the process."""
        host, port, psk = await self.peer.call("add")
        index = len(self.added)
        satellite = RemoteSatellite(self.peer, index, host, port, psk)
        self.added.append(satellite)
        return satellite

    async def run_all(self, count: int, pcm16k: bytes, run_timeout: float) -> list[RunSummary]:
        """See :meth:`SatellitePeer.run_all`."""
        runs: list[RunSummary] = await self.peer.call(
            "run_all", count, pcm16k, run_timeout, within=run_timeout + 30
        )
        return runs
