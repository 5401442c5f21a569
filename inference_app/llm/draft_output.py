"""Reading a drafted reply that the token budget cut off, up to its last complete sentence.

Prompt ``draft-v3`` has the model write ``{"cited": [...], "reply": "..."}`` in that order (the grammar
or guided decoding holds it to the order), so when generation stops at ``max_tokens`` inside the reply
string, the citations are complete and the reply is whole up to where it stopped. :func:`cut_off_reply`
keeps it up to its last complete sentence; the caller checks it for grounding like any other draft.
Anything else that is not JSON stays unreadable (``None``).
"""

from __future__ import annotations

import json
import re

# The complete citations array, then the opening of the reply string; the rest is the reply so far.
_CUT_OFF = re.compile(r'\A\s*\{\s*"cited"\s*:\s*(\[[^\]]*\])\s*,\s*"reply"\s*:\s*"(.*)\Z', re.DOTALL)
# A sentence ends with . ! ? (or their CJK forms), possibly closed by a quote or bracket, then a space.
_SENTENCE_END = re.compile(r"""[.!?\u3002\uff01\uff1f]["'\u201d\u2019)\]]*(?=\s|\Z)""")
MIN_REPLY_CHARS = 20  # a shorter reply says too little to be sent (SmolLM2 answered "..." at times)


_LENIENT = json.JSONDecoder(strict=False)  # admits raw control characters (a newline) inside strings


def cut_off_reply(raw: str) -> tuple[str, list[str], bool] | None:
    """``(reply, cited, cut_off)`` from a cited-first JSON answer cut off inside its reply, or ``None``.

    The reply is kept up to its last complete sentence; ``None`` when the text is not such an answer or
    when no sentence of at least :data:`MIN_REPLY_CHARS` characters was finished. A complete answer that
    strict JSON refused only for a raw newline or tab inside its reply (SmolLM2 on llama.cpp writes
    them) is read whole.
    """
    try:
        whole = _LENIENT.decode(raw)
    except ValueError:
        whole = None
    if (
        isinstance(whole, dict)
        and isinstance(whole.get("reply"), str)
        and isinstance(whole.get("cited"), list)
    ):
        reply = whole["reply"].strip()
        return (
            (reply, [str(item) for item in whole["cited"]], False) if len(reply) >= MIN_REPLY_CHARS else None
        )
    match = _CUT_OFF.match(raw)
    if match is None:
        return None
    try:
        cited = json.loads(match.group(1))
    except ValueError:
        return None
    if not isinstance(cited, list) or not all(isinstance(item, str) for item in cited):
        return None
    text = _decode_partial_string(match.group(2))
    if text is None:
        return None
    ends = [end.end() for end in _SENTENCE_END.finditer(text)]
    reply = text[: ends[-1]].strip() if ends else ""
    if len(reply) < MIN_REPLY_CHARS:
        return None
    return reply, cited, True


def _decode_partial_string(body: str) -> str | None:
    """The JSON string body ``body`` (no closing quote, possibly cut inside an escape), decoded."""
    if re.search(r'(?<!\\)(?:\\\\)*"', body):
        return None  # the string was closed: the answer went wrong elsewhere, not cut off in the reply
    for trim in range(0, 6):  # an escape cut short: "\", "\u00", ...
        candidate = body[: len(body) - trim] if trim else body
        try:
            decoded = _LENIENT.decode(f'"{candidate}"')
        except ValueError:
            continue
        return str(decoded)
    return None
