"""The emulator's aiohttp server: websocket endpoints, auth, ephemeral tokens, resumption state.

It implements ``hub.Hub`` for the connections it serves (``session.Session``).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
import contextlib
import copy
from datetime import UTC, datetime, timedelta
import hashlib
import json
import re
import ssl
from types import TracebackType
from typing import Any

from aiohttp import web

from .config import EmulatorConfig
from .errors import BAD_API_KEY, INVALID_ARGUMENT, ProtocolError
from .faults import Fault
from .models import DEFAULT_VOICE
from .records import ConnectionRecord, ResumableState, TokenRecord
from .scenario import ScenarioTurn
from .schema import camel, normalize
from .session import Session
from .speech import synthesize

_WS_PATH = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(?P<version>v1alpha|v1beta|v1)"
    r"\.GenerativeService\.(?P<method>BidiGenerateContent|BidiGenerateContentConstrained)$"
)
_TOKEN_PATH = re.compile(r"^/+v1alpha/auth_tokens$")
_TOKEN_FIELDS = frozenset(
    {"expireTime", "newSessionExpireTime", "uses", "bidiGenerateContentSetup", "fieldMask"}
)
TOKEN_MAX_LIFETIME = timedelta(hours=20)


def format_time(moment: datetime) -> str:
    """Format a UTC datetime as RFC 3339 the way Google APIs do ("...T...Z")."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (any fractional precision, Z or offset)."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})", value.strip()
    )
    if match is None:
        raise ValueError(value)
    base, frac, zone = match.groups()
    micro = (frac or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{base}.{micro}{zone}").astimezone(UTC)


def _google_error(status: int, message: str, status_text: str) -> web.Response:
    body: dict[str, Any] = {"error": {"code": status, "message": message, "status": status_text}}
    if message == BAD_API_KEY:
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    return web.json_response(body, status=status, dumps=lambda d: json.dumps(d, indent=2))


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            target[key] = nxt
        target = nxt
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = copy.deepcopy(value)


def _get_path(source: dict[str, Any], path: list[str]) -> Any:
    node: Any = source
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


class LiveEmulator:
    """A Gemini Live API server on a real socket, for tests and offline demos.

    Usage::

        async with LiveEmulator(EmulatorConfig(pace=0)) as emu:
            ...  # connect to emu.ws_url / emu.http_url
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Create the emulator; nothing listens until :meth:`start` (TLS with ``ssl_context``)."""
        self.config = config or EmulatorConfig()
        self.host = host
        self._ssl = ssl_context
        self._requested_port = port
        self.port = 0
        self.connections: list[ConnectionRecord] = []
        self.tokens: dict[str, TokenRecord] = {}
        self.handles: dict[str, ResumableState] = {}
        self._sessions: list[Session] = []
        self._pending_faults: list[Fault] = []
        self._persistent_faults: list[Fault] = []
        self._transcripts: collections.deque[str] = collections.deque()
        self._token_count = 0
        self._runner: web.AppRunner | None = None
        self._new_connection = asyncio.Condition()

    # ------------------------------------------------------------------ lifecycle

    @property
    def ws_url(self) -> str:
        """Base websocket URL, e.g. ``ws://127.0.0.1:PORT`` (``wss://`` with TLS)."""
        return f"{'wss' if self._ssl else 'ws'}://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        """Base HTTP URL (the SDK's ``base_url``), e.g. ``http://127.0.0.1:PORT``."""
        return f"{'https' if self._ssl else 'http'}://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start listening (again on the same port after a :meth:`stop`)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port, ssl_context=self._ssl)
        await site.start()
        server = site._server  # aiohttp has no public accessor
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = self._requested_port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every connection, wait for their tasks, and stop listening."""
        sessions = list(self._sessions)
        for session in sessions:
            await session.shutdown(1001, "Server is shutting down.")
        for session in sessions:
            with contextlib.suppress(TimeoutError):
                await session.record.wait_closed(3.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LiveEmulator:
        """Start the emulator."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the emulator."""
        await self.stop()

    # ------------------------------------------------------------------ test helpers

    def inject(self, fault: Fault) -> None:
        """Arm ``fault``: on the most recent open connection if any, else on the next one.

        Persistent faults also apply to every later connection.
        """
        if fault.persistent:
            self._persistent_faults.append(fault)
        active = [s for s in self._sessions if s.active]
        if active:
            active[-1].take_fault(fault)
        elif not fault.persistent:
            self._pending_faults.append(fault)

    def clear_faults(self) -> None:
        """Forget pending and persistent faults (already armed ones stay armed)."""
        self._pending_faults.clear()
        self._persistent_faults.clear()

    def queue_transcripts(self, *texts: str) -> None:
        """Set what the next audio utterances "said" (used when no scenario turn gives one)."""
        self._transcripts.extend(texts)

    def prepare_speech(self, texts: Iterable[str]) -> None:
        """Synthesize what replies will say now, not when they are spoken.

        ``texts`` are synthesized in the default voice and the voice of every open session
        (the audio is cached, see ``speech.py``): a scripted reply then costs no synthesis
        CPU when it starts, as a real server's TTS costs ours none.
        """
        voices = {DEFAULT_VOICE, *(session.voice for session in self._sessions if session.active)}
        for text in dict.fromkeys(texts):
            for voice in sorted(voices):
                synthesize(
                    text, voice=voice, seed=self.config.seed, ms_per_char=self.config.ms_per_char
                )

    async def wait_for_connections(self, count: int, within: float = 5.0) -> ConnectionRecord:
        """Wait until ``count`` connections have been opened; return the last one."""
        async with asyncio.timeout(within), self._new_connection:
            await self._new_connection.wait_for(lambda: len(self.connections) >= count)
        return self.connections[count - 1]

    # ------------------------------------------------------------------ session hooks

    def claim_faults(self) -> list[Fault]:
        """Hand the pending and persistent faults to a new connection."""
        faults = [*self._pending_faults, *self._persistent_faults]
        self._pending_faults.clear()
        return faults

    def key_ok(self, key: str) -> bool:
        """Whether an API key is accepted."""
        if not key:
            return False
        return self.config.api_keys is None or key in self.config.api_keys

    def next_transcript(self) -> str:
        """The transcript of the next audio utterance (queued, else the configured default)."""
        return self._transcripts.popleft() if self._transcripts else self.config.default_transcript

    def peek_transcript(self) -> str:
        """The transcript the next audio utterance will have, without consuming it."""
        return self._transcripts[0] if self._transcripts else self.config.default_transcript

    def scenario_peek(self) -> ScenarioTurn | None:
        """The next unconsumed scenario turn, if any."""
        return self.config.scenario.peek() if self.config.scenario is not None else None

    def store_state(self, state: ResumableState) -> None:
        """Remember the state a resumption handle restores."""
        self.handles[state.handle] = state

    def resume_state(self, handle: str) -> ResumableState:
        """Return the state for a handle or raise the server's close error."""
        state = self.handles.get(handle)
        now = asyncio.get_running_loop().time()
        if state is None or now - state.created > self.config.handle_validity_s:
            raise ProtocolError(
                1007, INVALID_ARGUMENT, "unknown or expired session resumption handle"
            )
        return state

    def _token_for(self, credential: str | None) -> TokenRecord:
        token = self.tokens.get(credential or "")
        if token is None:
            raise ProtocolError(1007, "Auth token is not valid.")
        if datetime.now(UTC) >= token.expire_time:
            raise ProtocolError(1007, "Auth token has expired.")
        return token

    def apply_token(
        self, credential: str | None, setup: dict[str, Any], *, resuming: bool
    ) -> dict[str, Any]:
        """Check a token and return the effective setup with its locked fields applied."""
        token = self._token_for(credential)
        if not resuming:
            if datetime.now(UTC) >= token.new_session_expire_time:
                raise ProtocolError(1007, "Auth token can no longer start new sessions.")
            if token.uses_left is not None and token.uses_left <= 0:
                raise ProtocolError(1007, "Auth token has no uses left.")
        locked = token.setup
        if locked is None:
            return setup
        if token.field_mask is None:
            effective = copy.deepcopy(locked)
            for key in ("sessionResumption",):
                if key in setup:
                    effective[key] = copy.deepcopy(setup[key])
            if "model" not in effective and "model" in setup:
                effective["model"] = setup["model"]
            return effective
        effective = copy.deepcopy(locked)
        effective.update(copy.deepcopy(setup))
        for path in token.field_mask:
            parts = path.split(".")
            _set_path(effective, parts, _get_path(locked, parts))
        return effective

    def consume_token(self, credential: str | None, *, resuming: bool) -> None:
        """Count a new session against a token (resumptions are free)."""
        token = self._token_for(credential)
        if resuming:
            return
        token.sessions += 1
        if token.uses_left is not None:
            token.uses_left -= 1

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        match = _WS_PATH.match(path)
        if match is not None:
            return await self._websocket(request, match["version"], match["method"])
        if _TOKEN_PATH.match(path):
            if request.method != "POST":
                return _google_error(405, "Method not allowed.", "UNIMPLEMENTED")
            return await self._create_token(request)
        return web.Response(status=404, text="Not Found")

    async def _websocket(
        self, request: web.Request, version: str, method: str
    ) -> web.StreamResponse:
        if method == "BidiGenerateContentConstrained" and version != "v1alpha":
            return web.Response(status=404, text="Not Found")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _google_error(400, "Expected a websocket upgrade.", "INVALID_ARGUMENT")
        if method == "BidiGenerateContent":
            credential = request.headers.get("x-goog-api-key") or request.query.get("key")
        else:
            auth = request.headers.get("Authorization", "")
            credential = auth[len("Token ") :].strip() if auth.startswith("Token ") else None
            credential = credential or request.query.get("access_token")
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024, timeout=2.0, autoping=True)
        await ws.prepare(request)
        record = ConnectionRecord(
            index=len(self.connections),
            path=request.path,
            api_version=version,
            method=method,
            token=credential if method == "BidiGenerateContentConstrained" else None,
        )
        self.connections.append(record)
        async with self._new_connection:
            self._new_connection.notify_all()
        session = Session(self, request, ws, record, credential)
        self._sessions.append(session)
        try:
            await session.run()
        finally:
            self._sessions.remove(session)
        return ws

    async def _create_token(self, request: web.Request) -> web.Response:
        key = request.headers.get("x-goog-api-key") or request.query.get("key") or ""
        if not self.key_ok(key):
            return _google_error(400, BAD_API_KEY, "INVALID_ARGUMENT")
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError:
            return _google_error(
                400, "Invalid JSON payload received. Unexpected token.", "INVALID_ARGUMENT"
            )
        if not isinstance(body, dict):
            return _google_error(400, INVALID_ARGUMENT, "INVALID_ARGUMENT")
        fields = {camel(k): v for k, v in body.items()}
        for raw_key in body:
            if camel(raw_key) not in _TOKEN_FIELDS:
                return _google_error(
                    400,
                    f'Invalid JSON payload received. Unknown name "{raw_key}": Cannot find field.',
                    "INVALID_ARGUMENT",
                )
        now = datetime.now(UTC)
        try:
            expire = (
                parse_time(fields["expireTime"])
                if fields.get("expireTime")
                else now + timedelta(seconds=self.config.token_expire_s)
            )
            new_session = (
                parse_time(fields["newSessionExpireTime"])
                if fields.get("newSessionExpireTime")
                else now + timedelta(seconds=self.config.token_new_session_s)
            )
            uses = int(fields.get("uses", 1))
        except ValueError, TypeError:
            return _google_error(400, INVALID_ARGUMENT, "INVALID_ARGUMENT")
        if uses < 0 or expire - now > TOKEN_MAX_LIFETIME:
            return _google_error(400, INVALID_ARGUMENT, "INVALID_ARGUMENT")
        setup: dict[str, Any] | None = None
        if fields.get("bidiGenerateContentSetup") is not None:
            try:
                setup = normalize("Setup", fields["bidiGenerateContentSetup"], "setup")
            except ProtocolError as err:
                return _google_error(400, err.reason, "INVALID_ARGUMENT")
        mask_raw = fields.get("fieldMask")
        mask: list[str] | None = None
        if mask_raw:
            items = mask_raw if isinstance(mask_raw, list) else str(mask_raw).split(",")
            mask = [".".join(camel(p) for p in item.strip().split(".")) for item in items]
            mask = [m for m in mask if m]
        self._token_count += 1
        digest = hashlib.sha256(f"{self.config.seed}:token:{self._token_count}".encode())
        name = f"auth_tokens/{digest.hexdigest()[:40]}"
        self.tokens[name] = TokenRecord(
            name=name,
            expire_time=expire,
            new_session_expire_time=new_session,
            uses=uses,
            uses_left=None if uses == 0 else uses,
            setup=setup,
            field_mask=mask,
        )
        reply = {
            "name": name,
            "expireTime": format_time(expire),
            "newSessionExpireTime": format_time(new_session),
            "uses": uses,
        }
        return web.json_response(reply, dumps=lambda d: json.dumps(d, indent=2))
