"""Rule-based replies used when no scenario turn matches.

Deterministic: the same request and history always give the same plan.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .scenario import AwaitResults, Grounding, Say, SayResult, Step, ToolCall

# The target is the words up to the end of the phrase (a quote, punctuation or the end), so a
# request quoted inside a longer message ("... was: "turn on the lamp". You called ...") names
# the same target as the request itself.
_TURN = re.compile(
    r"\bturn\s+(?P<a>on|off)\s+(?:the\s+)?(?P<t1>[^\".,;:!?()]+?)\s*(?=[\".,;:!?()]|$)"
    r"|\bturn\s+(?:the\s+)?(?P<t2>[^\".,;:!?()]+?)\s+(?P<b>on|off)\b",
    re.IGNORECASE,
)
_WHAT_DID_I_ASK = re.compile(r"\bwhat\s+did\s+i\s+(?:just\s+)?(?:ask|say)\b", re.IGNORECASE)
_GREETING = re.compile(r"^\s*(hello|hi|hey)\b", re.IGNORECASE)
_SEARCH = re.compile(r"\b(search|look\s+up|weather|news|latest)\b", re.IGNORECASE)

WORKING_ON_IT = "Okay, working on it."
FILLER = "One moment, checking..."
SYSTEM_ERROR = "Sorry, a system error occurred."


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_function(declarations: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    """Return the declaration named ``wanted`` (exact, else normalized substring match)."""
    for decl in declarations:
        if decl.get("name") == wanted:
            return decl
    key = _norm(wanted)
    for decl in declarations:
        if key and key in _norm(str(decl.get("name", ""))):
            return decl
    return None


def declared_params(decl: dict[str, Any]) -> set[str]:
    """Return the parameter names a declaration accepts."""
    schema = decl.get("parameters") or decl.get("parametersJsonSchema") or {}
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    return set(props) if isinstance(props, dict) else set()


def _turn_request(text: str) -> tuple[str, str] | None:
    match = _TURN.search(text.strip())
    if match is None:
        return None
    action = (match.group("a") or match.group("b")).lower()
    target = (match.group("t1") or match.group("t2") or "").strip()
    return action, target


def previous_user_text(history: list[dict[str, Any]]) -> str | None:
    """Return the user text before the latest user entry (the latest is the current request)."""
    users = [h["text"] for h in history if h.get("role") == "user" and h.get("text")]
    return users[-2] if len(users) >= 2 else None


def plan_reply(
    text: str,
    history: list[dict[str, Any]],
    declarations: list[dict[str, Any]],
    *,
    has_search: bool,
    non_blocking: set[str],
    background: bool = False,
) -> list[Step]:
    """Plan the reply to user ``text``; ``history`` already ends with that user entry.

    ``background``: the model reasons in the background (extended thinking): it calls the tool,
    speaks a filler, ends its turn while the call runs and answers when the result is in.
    """
    request = _turn_request(text)
    if request is not None:
        action, target = request
        decl = find_function(declarations, "TurnOn" if action == "on" else "TurnOff")
        if decl is None:
            return [Say(f"Sorry, I have no way to turn {action} the {target}.")]
        name = str(decl["name"])
        args = {k: v for k, v in {"name": target}.items() if k in declared_params(decl)}
        if name in non_blocking and background:
            return [ToolCall(name, args), Say(FILLER), AwaitResults(), SayResult()]
        if name in non_blocking:
            return [ToolCall(name, args), Say(WORKING_ON_IT)]
        return [ToolCall(name, args), SayResult()]
    if _WHAT_DID_I_ASK.search(text):
        previous = previous_user_text(history)
        if previous is None:
            return [Say("You have not asked me anything yet.")]
        return [Say(f'You asked: "{previous}"')]
    if has_search and _SEARCH.search(text):
        answer = f'Here is what I found about "{text.strip()}": it looks sunny and mild.'
        return [Say(answer), Grounding(query=text, text=answer)]
    if _GREETING.search(text):
        return [Say("Hello! How can I help you today?")]
    if not text.strip():
        return [Say("Sorry, I didn't catch that.")]
    return [Say(f'You said: "{text.strip()}". How can I help with that?')]


def _error_of(response: Any) -> str | None:
    if not isinstance(response, dict):
        return None
    for key in ("error", "error_text", "errorText"):
        if response.get(key):
            value = response[key]
            return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if response.get("success") is False:
        return str(response.get("message", "it failed"))
    if response.get("response_type") == "error":
        return str(response.get("data", {}).get("code", "it failed"))
    data = response.get("data")
    if isinstance(data, dict) and data.get("failed"):
        return "it failed"
    output = response.get("output")
    if isinstance(output, dict):
        return _error_of(output)
    return None


def confirmation(name: str, args: dict[str, Any], response: Any) -> str:
    """Return what the model says about a tool result: a success or an error sentence."""
    error = _error_of(response)
    target = str(args.get("name", "")).strip()
    key = _norm(name)
    action = "off" if "turnoff" in key else "on" if "turnon" in key else None
    if error is not None:
        what = f"turn {action} the {target}" if action and target else f"run {name}"
        return f"Sorry, I couldn't {what}: {error}."
    if action and target:
        return f"Done, the {target} is now {action}."
    if action:
        return f"Done, turned {action}."
    summary = json.dumps(response, sort_keys=True, separators=(", ", ": "))
    if len(summary) > 120:
        summary = summary[:117] + "..."
    return f"The {name} result is {summary}."


def default_grounding(query: str, text: str = "") -> dict[str, Any]:
    """Return a plausible groundingMetadata for a search about ``query`` answered by ``text``.

    The shape of the Gemini API's Google Search grounding: a search entry point (the HTML chip
    the terms require showing), web chunks (a redirect ``uri`` and the source's domain as
    ``title``), supports tying answer segments to chunks, and the queries run.
    """
    q = query.strip() or "search"
    link = "https://www.google.com/search?q=" + q.replace(" ", "+")
    meta: dict[str, Any] = {
        "searchEntryPoint": {
            "renderedContent": "<style>.container { display: flex; }</style>"
            f'<div class="container"><a class="chip" href="{link}">{q}</a></div>'
        },
        "groundingChunks": [
            {
                "web": {
                    "uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9wXE1",
                    "title": "weather.example.com",
                }
            },
            {
                "web": {
                    "uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9wXE2",
                    "title": "news.example.org",
                }
            },
        ],
        "webSearchQueries": [q],
    }
    if text:
        meta["groundingSupports"] = [
            {
                "segment": {"startIndex": 0, "endIndex": len(text.encode()), "text": text},
                "groundingChunkIndices": [0, 1],
            }
        ]
    return meta


def executable_code(name: str, args: dict[str, Any]) -> str:
    """The code the model shows for a function call (as in the recorded transcripts)."""
    params = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return f"print(default_api.{name}({params}))"


def url_context(urls: tuple[str, ...], status: str) -> dict[str, Any]:
    """Return a urlContextMetadata for ``urls``, all with retrieval ``status``."""
    return {"urlMetadata": [{"retrievedUrl": u, "urlRetrievalStatus": status} for u in urls]}


__all__ = [
    "FILLER",
    "SYSTEM_ERROR",
    "WORKING_ON_IT",
    "SayResult",
    "confirmation",
    "declared_params",
    "default_grounding",
    "executable_code",
    "find_function",
    "plan_reply",
    "previous_user_text",
    "url_context",
]
