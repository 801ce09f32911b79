"""Ephemeral tokens: short-lived credentials for client-to-server Live sessions.

``POST {base}/v1alpha/auth_tokens`` with the API key returns ``auth_tokens/...``, usable on the
Constrained endpoint. ``bidiGenerateContentSetup`` + ``fieldMask`` lock the session configuration:
the fields named in the mask (all of the setup when the mask is empty) cannot be changed by the
token's holder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from .endpoint import Endpoint
from .errors import AuthenticationError, CannotConnectError, LiveError
from .messages import JsonObject


@dataclass(frozen=True, slots=True)
class EphemeralToken:
    """A minted token."""

    name: str  # "auth_tokens/..."
    expire_time: datetime
    new_session_expire_time: datetime | None
    uses: int

    def __repr__(self) -> str:
        """Never show the token itself."""
        return f"EphemeralToken(expire_time={self.expire_time.isoformat()}, uses={self.uses})"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def field_mask(setup: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every leaf path of a setup dict in fieldMask form (``generationConfig.temperature``)."""
    paths: list[str] = []
    for key, value in setup.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and key not in ("systemInstruction",):
            paths.extend(field_mask(value, f"{path}."))
        else:
            paths.append(path)
    return paths


def token_request(
    *,
    setup: Mapping[str, Any] | None = None,
    locked_fields: Iterable[str] | None = None,
    uses: int = 1,
    expire_in: timedelta = timedelta(minutes=30),
    new_session_expire_in: timedelta = timedelta(minutes=1),
    now: datetime | None = None,
) -> JsonObject:
    """Build the auth_tokens request body. ``setup`` is the inner setup object (no "setup" key)."""
    if uses < 0:
        raise ValueError("uses must be >= 0 (0 = unlimited)")
    if expire_in > timedelta(hours=20):
        raise ValueError("an ephemeral token may live at most 20 hours")
    start = now or datetime.now(UTC)
    body: JsonObject = {
        "uses": uses,
        "expireTime": _rfc3339(start + expire_in),
        "newSessionExpireTime": _rfc3339(start + new_session_expire_in),
    }
    if setup is not None:
        body["bidiGenerateContentSetup"] = dict(setup)
        mask = list(locked_fields) if locked_fields is not None else []
        if mask:
            body["fieldMask"] = ",".join(mask)
    return body


async def create_token(
    http: aiohttp.ClientSession,
    endpoint: Endpoint,
    body: Mapping[str, Any],
    *,
    request_timeout: float = 15.0,
) -> EphemeralToken:
    """Mint an ephemeral token with the endpoint's API key."""
    if not endpoint.api_key:
        raise AuthenticationError("creating an ephemeral token needs an API key")
    url = f"{endpoint.http_base}/v1alpha/auth_tokens"
    try:
        async with http.post(
            url,
            json=dict(body),
            headers={"x-goog-api-key": endpoint.api_key},
            timeout=aiohttp.ClientTimeout(total=request_timeout),
        ) as resp:
            data: Any = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as err:
        raise CannotConnectError(f"cannot reach the token service: {err}") from err
    except ValueError as err:
        raise LiveError("the token service did not answer JSON") from err
    if status >= 400 or not isinstance(data, dict) or "name" not in data:
        message = data.get("error", {}).get("message", "") if isinstance(data, dict) else ""
        if status in (400, 401, 403) and "key" in message.lower():
            raise AuthenticationError(f"token request rejected: {message}", code=status)
        raise LiveError(f"token request failed (HTTP {status}): {message}", code=status)
    expire = _parse_time(data.get("expireTime"))
    if expire is None:
        raise LiveError("token response has no expireTime")
    return EphemeralToken(
        name=str(data["name"]),
        expire_time=expire,
        new_session_expire_time=_parse_time(data.get("newSessionExpireTime")),
        uses=int(data.get("uses", body.get("uses", 1))),
    )
