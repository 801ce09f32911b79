"""Where and how to reach the Live service: base URL, credential, service URLs and headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidEndpointError

DEFAULT_BASE_URL: Final = "wss://generativelanguage.googleapis.com"
SERVICE: Final = "google.ai.generativelanguage.{version}.GenerativeService.{method}"
_WS_SCHEMES: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES: Final = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def check_base_url(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash; raise InvalidEndpointError if unusable.

    Accepted: ``ws``, ``wss``, ``http`` or ``https`` URLs with a host and, if given, a numeric
    port in range (``http://127.0.0.1:8765``, ``wss://proxy.example/live``).
    """
    url = base_url.strip().rstrip("/")
    if any(char.isspace() for char in url):
        raise InvalidEndpointError(f"invalid endpoint URL {url!r}: it contains spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as err:
        raise InvalidEndpointError(f"invalid endpoint URL {url!r}: {err}") from err
    if parts.scheme not in _WS_SCHEMES:
        raise InvalidEndpointError(
            f"invalid endpoint URL {url!r}: the scheme must be ws, wss, http or https"
        )
    if not parts.hostname:
        raise InvalidEndpointError(f"invalid endpoint URL {url!r}: no host")
    if port == 0:
        raise InvalidEndpointError(f"invalid endpoint URL {url!r}: port 0")
    if parts.query or parts.fragment:
        raise InvalidEndpointError(f"invalid endpoint URL {url!r}: no query or fragment allowed")
    return url


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Google's service or an emulator/proxy, with an API key or an ephemeral token."""

    api_key: str | None = None
    token: str | None = None  # "auth_tokens/..." ephemeral token (Constrained endpoint)
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        """Exactly one credential, and a usable URL (InvalidEndpointError otherwise)."""
        if bool(self.api_key) == bool(self.token):
            raise ValueError("an Endpoint needs exactly one of api_key or token")
        object.__setattr__(self, "base_url", check_base_url(self.base_url))

    def __repr__(self) -> str:
        """Never show the credential."""
        kind = "token" if self.token else "api_key"
        return f"Endpoint(base_url={self.base_url!r}, auth={kind})"

    def _with_scheme(self, schemes: dict[str, str]) -> str:
        parts = urlsplit(self.base_url)
        return urlunsplit((schemes[parts.scheme], parts.netloc, parts.path, "", ""))

    @property
    def ws_base(self) -> str:
        """Websocket base URL (http -> ws, https -> wss)."""
        return self._with_scheme(_WS_SCHEMES)

    @property
    def http_base(self) -> str:
        """REST base URL (ws -> http, wss -> https)."""
        return self._with_scheme(_HTTP_SCHEMES)

    @property
    def secure(self) -> bool:
        """Whether the websocket uses TLS."""
        return self.ws_base.startswith("wss:")

    def url(self, version: str) -> str:
        """Websocket URL of the BidiGenerateContent service for ``version``."""
        if self.token:
            service = SERVICE.format(version="v1alpha", method="BidiGenerateContentConstrained")
        else:
            service = SERVICE.format(version=version, method="BidiGenerateContent")
        return f"{self.ws_base}/ws/{service}"

    def headers(self) -> dict[str, str]:
        """Authentication headers (never logged: see driver.py)."""
        if self.token:
            return {"Authorization": f"Token {self.token}"}
        assert self.api_key is not None
        return {"x-goog-api-key": self.api_key}

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credential strings, for redaction."""
        return tuple(s for s in (self.api_key, self.token) if s)
