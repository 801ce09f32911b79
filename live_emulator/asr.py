"""What the input transcription options do to a transcript (the emulator has no real ASR).

* ``customVocabulary`` biases recognition toward the given phrases: a run of words that sounds
  close to a phrase (same number of words, similar letters) is written as the phrase.
* ``mode: SMART`` removes disfluencies (filler words, immediate repetitions) and capitalizes and
  punctuates the result; ``VERBATIM`` (the default) keeps the words as heard.
"""

from __future__ import annotations

from difflib import SequenceMatcher
import re

FILLERS = frozenset({"um", "uh", "erm", "er", "hmm", "mm", "uhm", "ah"})
MATCH_RATIO = 0.75


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def bias(text: str, vocabulary: list[str]) -> str:
    """Replace word runs of ``text`` that are close to a vocabulary phrase by that phrase."""
    words = text.split()
    for phrase in sorted(vocabulary, key=len, reverse=True):
        size = len(phrase.split())
        target = _key(phrase)
        if size == 0 or not target:
            continue
        i = 0
        while i + size <= len(words):
            window = words[i : i + size]
            tail = re.search(r"[^\w']+$", window[-1])
            ratio = SequenceMatcher(None, _key(" ".join(window)), target).ratio()
            if ratio >= MATCH_RATIO:
                parts = phrase.split()
                parts[-1] += tail[0] if tail else ""
                words[i : i + size] = parts
                i += size
            else:
                i += 1
    return " ".join(words)


def smart(text: str) -> str:
    """Remove filler words and immediate word repetitions; capitalize and end with a period."""
    out: list[str] = []
    for word in text.split():
        bare = re.sub(r"[^\w']", "", word).lower()
        if bare in FILLERS:
            continue
        if out and re.sub(r"[^\w']", "", out[-1]).lower() == bare:
            continue
        out.append(word.rstrip(",") if bare else word)
    cleaned = " ".join(out).strip()
    if not cleaned:
        return cleaned
    cleaned = cleaned[0].upper() + cleaned[1:]
    return cleaned if cleaned[-1] in ".?!" else cleaned + "."


def transcribe(text: str, config: dict[str, object]) -> str:
    """Apply an AudioTranscriptionConfig (normalized) to what was said."""
    vocabulary = config.get("customVocabulary") or config.get("adaptationPhrases") or []
    if isinstance(vocabulary, list) and vocabulary:
        text = bias(text, [str(v) for v in vocabulary])
    if config.get("mode") == "SMART":
        text = smart(text)
    return text
