"""Protocol events of one request -> chat-log deltas. Pure: no I/O, no asyncio, no HA calls.

What the user reads is one clean reply:

- The model's words of a *generation* are held until the generation is over
  (``generationComplete``, ``turnComplete`` or an interruption): a generation whose connection
  died (``TurnLost``) is withdrawn before anything of it reached the chat log.
- While a call of this request is unresolved its words stay held too, and are added after the
  call's result (models with background calls talk while tools run), so the chat log reads
  call -> result -> reply.
- Consecutive turns of one request (the answer, then a follow-up with a tool's result) are
  separated by a space in the same reply.
- The stream always ends with an assistant message (an empty one when the model said nothing,
  e.g. cut short by a barge-in), so HA records no "(no response)" placeholder.

``feed`` takes one item at a time and returns the deltas to add; ``done`` says when the
request is complete: its answer turn ended, no call of it is still running, and (when
``wait_for_followups``) no WHEN_IDLE/INTERRUPT result of it is still to be spoken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from homeassistant.components.conversation import (
    AssistantContentDeltaDict,
    ToolResultContentDeltaDict,
)
from homeassistant.helpers import llm

from ..live.messages import (
    FunctionCall,
    GenerationComplete,
    Grounding,
    Interrupted,
    OutputTranscription,
    TextOut,
    ToolCall,
    ToolCallCancellation,
)
from ..live.protocol import (
    FOLLOWUP_SCHEDULING,
    CauseKind,
    SessionEnded,
    TurnEnded,
    TurnLost,
    TurnStarted,
)
from .tools import ToolOutcome

type Delta = AssistantContentDeltaDict | ToolResultContentDeltaDict


@dataclass(slots=True)
class _Held:
    """Words and thoughts of the generation in progress, not yet in the chat log."""

    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    finished: bool = False  # the generation is over; it waits only for unresolved calls


@dataclass(frozen=True, slots=True)
class Superseded:
    """The request's owner gave up (a newer voice run took the conversation over)."""


class TurnStream:
    """Turns one request's events into chat-log deltas."""

    def __init__(
        self, ha_name: Callable[[str], str | None], *, wait_for_followups: bool = True
    ) -> None:
        """``ha_name`` maps a declared function name to its HA tool name."""
        self._ha_name = ha_name
        self._wait_for_followups = wait_for_followups
        self._held: list[_Held] = []  # oldest first; only the last one is still generating
        self._unresolved: dict[str, str] = {}  # call id -> HA tool name
        self._followups_due = 0
        self._answered = False
        self._message_open = False  # an assistant message is open for more text
        self._said = ""  # text of the open assistant message
        self._added_text = False  # any assistant text reached the chat log
        self._ended = False
        self._sources: dict[str, str] = {}  # uri -> title, in order
        self.waiting_for_input = False
        self.interrupted = False
        self.abnormal_end: str | None = None  # turnCompleteReason of an abnormal end
        self.error: Exception | None = None

    @property
    def sources(self) -> list[tuple[str, str]]:
        """The (title, uri) of every source the answer is grounded on."""
        return [(title, uri) for uri, title in self._sources.items()]

    @property
    def said_anything(self) -> bool:
        """Whether any words of the model reached the chat log."""
        return self._added_text

    @property
    def done(self) -> bool:
        """Whether the request is complete (or ended by an error / a newer run)."""
        if self._ended:
            return True
        followups = self._wait_for_followups and self._followups_due > 0
        return self._answered and not self._unresolved and not followups

    @property
    def awaiting_followups(self) -> bool:
        """Whether only a spoken tool result (WHEN_IDLE / INTERRUPT) is still awaited."""
        return (
            not self._ended
            and self._answered
            and not self._unresolved
            and self._wait_for_followups
            and self._followups_due > 0
        )

    def give_up_followups(self) -> None:
        """Stop waiting for follow-ups the model did not speak."""
        self._followups_due = 0

    def start(self) -> list[Delta]:
        """The deltas to add before any event: an assistant message."""
        self._message_open = True
        return [{"role": "assistant"}]

    def finish(self) -> list[Delta]:
        """The deltas that end the stream: held words, then an assistant message if needed."""
        self._unresolved.clear()
        out = self._release(final=True)
        if self._sources and self._added_text:
            links = " · ".join(f"[{title}]({uri})" for title, uri in self.sources)
            out.append({"content": f"\n\n{links}"})  # where the answer comes from
        if not self._added_text and not self._message_open:
            out.append({"role": "assistant", "content": ""})
        elif not self._added_text:
            out.append({"content": ""})  # a silent answer, not HA's "(no response)"
        return out

    def feed(self, item: object) -> list[Delta]:
        """Deltas for one event of this request."""
        match item:
            case TurnStarted():
                self._held.append(_Held())
                return []
            case OutputTranscription(text=text) | TextOut(text=text, thought=False):
                self._current().text.append(text)
                return []
            case TextOut(text=text, thought=True):
                self._current().thinking.append(text)
                return []
            case GenerationComplete():
                self._current().finished = True
                return self._release()
            case Interrupted():
                self.interrupted = True
                self._current().finished = True
                return self._release()
            case TurnEnded(cause=cause):
                if self._held:
                    self._held[-1].finished = True
                if item.abnormal:
                    self.abnormal_end = item.reason
                if cause.kind is CauseKind.REQUEST and not item.in_progress:
                    self._answered = True  # (in progress: the model works on, more turns follow)
                    self.waiting_for_input = item.needs_more_input
                elif cause.kind is CauseKind.FOLLOWUP and self._followups_due:
                    self._followups_due -= 1  # a tool's result was spoken
                self.interrupted |= item.interrupted
                return self._release()
            case TurnLost():
                if self._held and not self._held[-1].finished:
                    self._held.pop()  # the dead generation: none of it reaches the chat log
                return []
            case Grounding(sources=sources):
                for source in sources:
                    self._sources.setdefault(source.uri, source.title)
                return []
            case ToolCall(calls=calls):
                return self._tool_calls(calls)
            case ToolOutcome():
                return self._tool_result(item)
            case ToolCallCancellation(ids=ids):
                out: list[Delta] = []
                for call_id in ids:
                    if (name := self._unresolved.pop(call_id, None)) is not None:
                        out.append(self._result_delta(call_id, name, _CANCELLED))
                        self._message_open = False
                return out + self._release()
            case SessionEnded(error=error):
                self.error = error
                self._ended = True
                return []
            case Superseded():
                self.interrupted = True
                self._ended = True
                return []
            case _:
                return []

    # ---------------------------------------------------------------- internals

    def _current(self) -> _Held:
        if not self._held or self._held[-1].finished:
            self._held.append(_Held())
        return self._held[-1]

    def _tool_calls(self, calls: tuple[FunctionCall, ...]) -> list[Delta]:
        inputs = []
        for call in calls:
            ha_name = self._ha_name(call.name) or call.name
            self._unresolved[call.id] = ha_name
            inputs.append(
                llm.ToolInput(tool_name=ha_name, tool_args=call.args, id=call.id, external=True)
            )
        out: list[Delta] = []
        if not self._message_open:
            out.append({"role": "assistant"})
        out.append({"tool_calls": inputs})
        self._message_open = False  # its results come next
        return out

    def _tool_result(self, outcome: ToolOutcome) -> list[Delta]:
        if outcome.scheduling in FOLLOWUP_SCHEDULING:
            self._followups_due += 1
        name = self._unresolved.pop(outcome.call.id, None)
        if name is None:
            return []
        out: list[Delta] = [self._result_delta(outcome.call.id, name, outcome.result)]
        self._message_open = False
        return out + self._release()

    @staticmethod
    def _result_delta(call_id: str, name: str, result: llm.ToolResult) -> Delta:
        return {"role": "tool_result", "tool_call_id": call_id, "tool_name": name, "result": result}

    def _release(self, *, final: bool = False) -> list[Delta]:
        """Add the words of finished generations, unless a call still waits for its result."""
        if self._unresolved:
            return []
        out: list[Delta] = []
        while self._held and (self._held[0].finished or final):
            held = self._held.pop(0)
            text = "".join(held.text)
            thinking = "".join(held.thinking)
            if not text.strip() and not thinking:
                continue
            if not self._message_open:
                out.append({"role": "assistant"})
                self._message_open = True
                self._said = ""
            if thinking:
                out.append({"thinking_content": thinking})
            if text.strip():
                if self._said and not self._said[-1].isspace() and not text[0].isspace():
                    text = " " + text  # a new turn of the same reply
                out.append({"content": text})
                self._said += text
                self._added_text = True
        return out


_CANCELLED = llm.ToolResult({"error": "Cancelled"}, error=True)
