"""Prompt-injection detection and neutralisation for untrusted ticket text.

``detect_injection(text)`` flags text that tries to steer the model ("ignore your instructions", "you are
now ...", "route this to the executive team", "set the priority to urgent", chat-template markers), in
English, German, Spanish and French. A flag is evidence for the audit trail and for triage, not a
verdict: the model is held to the schema and the company's labels whatever the text says.

``neutralize(text)`` makes the text safe to place inside the prompt's data frame
(``<ticket>...</ticket>``, ``<example>...</example>``): it strips chat-template control tokens, which a
tokenizer would otherwise turn into real role markers, escapes the angle brackets of anything shaped
like a tag so no frame can be closed or opened from inside, and defuses code fences and
"### Instruction"-style headers.

The patterns aim at phrasing addressed to the model; ordinary support text ("I tried to ignore the
error", "please route me to billing") is not flagged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from inference_app.llm.injection_structure import Hit, fold_homoglyphs, sentence_around, structural_hits

_MAX_MATCH_CHARS = 80


@dataclass(frozen=True)
class InjectedSpan:
    """A passage of the normalised text that addresses the model, and why it was taken for one."""

    start: int
    end: int
    text: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class InjectionSignal:
    """Whether the text looks like an attempt to steer the model, the phrases that gave it away, the
    injected passages (offsets into ``normalized``, the text as the detector read it) and the reasons."""

    suspected: bool
    matches: tuple[str, ...] = ()
    spans: tuple[InjectedSpan, ...] = ()
    reasons: tuple[str, ...] = ()
    normalized: str = field(default="", compare=False, repr=False)

    def clean_text(self) -> str:
        """The normalised text without the injected passages (empty when nothing else is left)."""
        kept: list[str] = []
        position = 0
        for span in self.spans:
            kept.append(self.normalized[position : span.start])
            position = span.end
        kept.append(self.normalized[position:])
        return re.sub(r"[ \t]*\n(?:[ \t]*\n)+", "\n\n", "".join(kept)).strip()


def _rule(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives), re.IGNORECASE)


# Words that name the model's instructions, per language, and the qualifiers that make "ignore the
# rules" an order to the model rather than a complaint ("Outlook seems to ignore the rules I set").
_EN_RULES = (
    r"(?:instructions?|prompts?|rules|directions|guidelines|directives|commands|programming|guardrails)"
)
_EN_QUALIFIER = (
    r"(?:all|any|every|your|previous|prior|above|earlier|preceding|original|initial|system|safety)"
)
_DE_VERB = (
    r"(?:ignoriere?|ignorieren\s+sie|vergiss|vergessen\s+sie|missachte|missachten\s+sie|"
    r"verwirf|verwerfen\s+sie)"
)
_DE_RULES = r"(?:anweisung\w*|instruktion\w*|regeln|befehle?|vorgaben|richtlinien|system-?prompts?|prompts?)"
_ES_VERB = (
    r"(?:ignora|ignore|ignorad|olvida|olvide|olvidad|omite|omita|descarta|descarte|"
    r"haz\s+caso\s+omiso\s+(?:a|de))"
)
_ES_RULES = r"(?:instrucciones|indicaciones|reglas|[óo]rdenes|directrices|normas|prompts?)"
_ES_LATER = r"(?:anteriores|previas|originales|iniciales|de\s+arriba|del\s+sistema)"
_FR_VERB = r"(?:ignore[sz]?|oublie[sz]?|n[ée]glige[sz]?|fais\s+abstraction\s+de|faites\s+abstraction\s+de)"
_FR_RULES = r"(?:instructions?|consignes|r[èe]gles|directives|ordres|prompts?)"
_FR_LATER = r"(?:pr[ée]c[ée]dentes|ci-dessus|ant[ée]rieures|initiales|d'origine|du\s+syst[èe]me)"

_OVERRIDE = _rule(
    # English
    rf"\b(?:ignore|disregard|forget|bypass|override|discard)\s+(?:(?:the|of|my|all)\s+)?{_EN_QUALIFIER}\s+"
    rf"(?:[\w-]+\s+){{0,2}}?{_EN_RULES}\b",
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|anything\s+)?(?:of\s+)?"
    r"(?:the\s+|what(?:'s| is| was)\s+)?(?:above|said\s+before|written\s+above)\b"
    r"(?!\s+(?:message|mail|e-?mail|ticket|request|reply|note|one|link))",
    rf"\b(?:do\s+not|don'?t|stop)\s+(?:follow(?:ing)?|obey(?:ing)?)\s+{_EN_QUALIFIER}\s+"
    rf"(?:[\w-]+\s+){{0,2}}?{_EN_RULES}\b",
    # German
    rf"\b{_DE_VERB}\s+(?:[\w-]+\s+){{0,4}}?{_DE_RULES}\b",
    rf"\b(?:befolge|befolgen\s+sie)\s+(?:\w+\s+){{0,3}}?{_DE_RULES}\s+nicht\b",
    # Spanish
    rf"\b{_ES_VERB}\s+(?:todas\s+)?(?:tus|sus|vuestras)\s+(?:\w+\s+)?{_ES_RULES}\b",
    rf"\b{_ES_VERB}\s+(?:todas\s+)?(?:las\s+)?(?:{_ES_RULES}\s+{_ES_LATER}|{_ES_LATER}\s+{_ES_RULES})\b",
    # French
    rf"\b{_FR_VERB}\s+(?:toutes\s+)?(?:tes|vos)\s+(?:\w+\s+)?{_FR_RULES}\b",
    rf"\b{_FR_VERB}\s+(?:toutes\s+)?(?:les\s+)?(?:{_FR_RULES}\s+{_FR_LATER}|{_FR_LATER}\s+{_FR_RULES})",
)

_ROLE = _rule(
    r"\byou\s+are\s+now\s+(?:a|an|the|my|in|no\s+longer|free|unrestricted|jailbroken|dan)\b",
    r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|shall|should|only)\b",
    r"\bpretend\s+(?:to\s+be|you\s+are|that\s+you)\b",
    r"\b(?:developer|god|dan|jailbreak)\s+mode\b",
    r"\bjailbreak\w*\b",
    # German
    r"\b(?:du\s+bist|sie\s+sind)\s+(?:jetzt|nun|ab\s+sofort|ab\s+jetzt)\s+(?:ein|eine|der|die|das|mein|meine|kein)\b",
    r"\bab\s+(?:jetzt|sofort)\s+(?:bist\s+du|sind\s+sie)\b",
    r"\b(?:tu|tun\s+sie)\s+so,?\s+als\b",
    r"\b(?:verhalte\s+dich|verhalten\s+sie\s+sich|agiere|antworte)\s+(?:wie|als)\s+(?:ein|eine|der|die|das|w[äa]rst|ob)\b",
    # Spanish
    r"\b(?:ahora|a\s+partir\s+de\s+ahora|desde\s+ahora)\s+(?:eres|ser[áa]s|act[úu]as)\b",
    r"\b(?:comp[óo]rtate\s+como|hazte\s+pasar\s+por|finge\s+(?:ser|que))\b",
    # French
    r"\b(?:tu\s+es|vous\s+[êe]tes)\s+(?:maintenant|d[ée]sormais)\b",
    r"\bd[ée]sormais,?\s+(?:tu|vous)\s+(?:es|[êe]tes|dois|devez)\b",
    r"\b(?:agis|agissez|comporte-toi|comportez-vous)\s+comme\b",
    r"\b(?:fais|faites)\s+comme\s+si\s+(?:tu|vous)\b",
)

_SYSTEM = _rule(
    r"\bsystem\s*prompt\b",
    r"\bnew\s+(?:instructions?|directives?|system\s+message)\b",
    r"\b(?:new|updated|additional|revised)\s+(?:instructions?|rules|directives?)\s*:",
    r"\b(?:reveal|print|show|repeat|output)\s+(?:me\s+)?(?:your|the)\s+(?:\w+\s+)?(?:instructions|prompt)\b",
    r"\bprompt\s+injection\b",
    # German
    r"\bsystem-?(?:prompt|anweisung\w*|nachricht)\b",
    r"\bneue\s+(?:anweisung\w*|instruktion\w*|regeln|befehle|vorgaben)\b",
    # Spanish
    r"\b(?:prompt|mensaje|instrucciones)\s+del\s+sistema\b",
    r"\bnuevas\s+(?:instrucciones|indicaciones|reglas|[óo]rdenes)\b",
    # French
    r"\b(?:prompt|invite|message|instructions?)\s+(?:du\s+)?syst[èe]me\b",
    r"\bnouvelles\s+(?:instructions|consignes|r[èe]gles)\b",
)

# Phrases that are orders only in the imperative, which Spanish and French share with the indicative
# ("el sistema asigna este ticket al equipo equivocado", "... that currently classify this as high
# priority"): they count only at the start of a sentence or clause, or after "please", "and", ...
_ORDER_BEFORE = re.compile(
    r"(?:[.!?¡:;,\n]\s*|\b(?:now|just|and|then|you\s+(?:must|should|will|need\s+to)|por\s+favor|"
    r"ahora|y|luego|s'il\s+(?:te|vous)\s+pla[îi]t|maintenant|et|puis)\s+)$",
    re.IGNORECASE,
)
_STRICT_ORDER_BEFORE = re.compile(
    r"(?:[.!?¡:;\n]\s*|\b(?:please|now|you|ahora|por\s+favor)\s+)$", re.IGNORECASE
)
_ORDER_WINDOW = 40

_ACTING = _rule(
    r"\bact\s+as\s+(?:if\b|though\b|an?\b|the\b|my\b)",
    r"\bact[úu]a\s+como\b",
)

_STEERING = _rule(
    # English: route/assign this ticket, set its priority, classify it
    r"\b(?:re-?route|route|assign|re-?assign)\s+(?:this|it|the\s+(?:ticket|request|case|issue)|this\s+"
    r"(?:ticket|request|case|issue))\s+(?:directly\s+|immediately\s+|straight\s+)?to\b",
    r"\bset\s+(?:the\s+|its\s+|this\s+)?(?:ticket(?:'s)?\s+)?priority\s*(?:to\b|as\b|at\b|=|:)",
    r"\b(?:classify|categori[sz]e|label|tag)\s+(?:this|it|the\s+ticket|this\s+ticket|the\s+request)\s+"
    r"(?:as|under|into)\b",
    # German
    r"\b(?:leite|leiten\s+sie|weise|weisen\s+sie|ordne|ordnen\s+sie)\s+(?:dieses\s+ticket|das\s+ticket|es|das|dies|ihn)\s+"
    r"(?:\w+\s+){0,3}?(?:an|zu|weiter)\b",
    r"\b(?:setze|setzen\s+sie|stelle|stellen\s+sie)\s+(?:die\s+)?priorit[äa]t\s+auf\b",
    r"\bpriorit[äa]t\s+auf\s+\w+\s+setzen\b",
    r"\b(?:klassifiziere|klassifizieren\s+sie|kategorisiere|kategorisieren\s+sie|stufe|stufen\s+sie)\s+"
    r"(?:dieses\s+ticket|das\s+ticket|es|das|dies)\s+(?:als|unter)\b",
    # Spanish
    r"\b(?:enruta|enrute|redirige|redirija|asigna|asigne|deriva|derive)\s+(?:este\s+ticket|el\s+ticket|esto|esta\s+"
    r"solicitud)\s+(?:directamente\s+)?(?:a|al)\b",
    r"\b(?:establece|establezca|pon|ponga|cambia|cambie|fija|fije)\s+la\s+prioridad\s+(?:a|en|como)\b",
    r"\b(?:clasifica|clasifique|categoriza|categorice|etiqueta|etiquete)\s+(?:este\s+ticket|el\s+ticket|esto)\s+como\b",
    # French
    r"\b(?:achemine[zr]?|transf[èée]re[zr]?|assigne[zr]?|attribue[zr]?|redirige[zr]?|envoie[zr]?)\s+"
    r"(?:ce\s+ticket|ceci|cette\s+demande|le\s+ticket)\s+(?:directement\s+)?(?:à|a|au|vers)\b",
    r"\b(?:mets|mettez|d[ée]finis|d[ée]finissez|fixe[zr]?)\s+la\s+priorit[ée]\s+(?:à|a|sur|en)\b",
    r"\b(?:classe[zr]?|cat[ée]gorise[zr]?)\s+(?:ce\s+ticket|ceci|cela|cette\s+demande)\s+(?:comme|en|dans)\b",
)

_TEMPLATE = _rule(
    r"<\|[^<>|\n]{1,40}\|>",  # <|im_start|>, <|system|>, <|eot_id|>
    r"\[/?INST\]",
    r"<</?SYS>>",
    r"(?:^|\n)\s*#{2,}\s*(?:instruction|system|response|input|assistant|user)s?\b",
    r"(?:^|\n)\s*(?:system|assistant)\s*:\s*(?:you|ignore|new|from\s+now)\b",
    r"<\s*/?\s*(?:ticket|example|examples|system|instructions?|context|assistant|user)\s*>",
)

# Each rule with what must come just before a match (None: anything), and the reason it gives.
_RULES: tuple[tuple[re.Pattern[str], re.Pattern[str] | None, str], ...] = (
    (_OVERRIDE, None, "override of the instructions"),
    (_ROLE, None, "role-play"),
    (_ACTING, _STRICT_ORDER_BEFORE, "role-play"),
    (_SYSTEM, None, "system prompt or new instructions"),
    (_STEERING, _ORDER_BEFORE, "order about routing, priority or classification"),
    (_TEMPLATE, None, "chat-template or frame marker"),
)
# Template markers that close a turn; after an opening one the rest of the text is the injected turn.
_CLOSING_MARKER = re.compile(
    r"<\|(?:im_end|eot_id|end|endoftext|end_header_id)\|>|\[/INST\]|<</SYS>>|</", re.I
)

# Zero-width and other invisible format characters, used to split trigger words.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def _normalized(text: str) -> str:
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    return fold_homoglyphs(_SPACES.sub(" ", text))


def _follows(order_before: re.Pattern[str], text: str, start: int) -> bool:
    return start == 0 or order_before.search(text, max(0, start - _ORDER_WINDOW), start) is not None


def detect_injection(text: str, *, labels: Sequence[str] = ()) -> InjectionSignal:
    """Flag text that addresses the model rather than the support team; see the module doc.

    ``labels`` are the company's own category and team names: an order naming one of them ("set
    category to Refund") is an injection even when it is not phrased like one.
    """
    return _detect(text, labels=tuple(labels), depth=0)


def _detect(text: str, *, labels: tuple[str, ...], depth: int) -> InjectionSignal:
    normalized = _normalized(text)
    found: list[str] = []
    hits: list[Hit] = []
    for rule, order_before, reason in _RULES:
        for match in rule.finditer(normalized):
            if order_before is not None and not _follows(order_before, normalized, match.start()):
                continue
            snippet = match.group(0).strip()[:_MAX_MATCH_CHARS]
            if snippet and snippet not in found:
                found.append(snippet)
            hits.append(_phrase_hit(normalized, match, reason, template=rule is _TEMPLATE))
    phrase_hits = list(hits)
    hits.extend(structural_hits(normalized, labels=labels))
    if depth == 0:
        hits.extend(_encoded_hits(normalized, labels=labels))
    for hit in hits[len(phrase_hits) :]:
        if not any(hit.start < other.end and other.start < hit.end for other in phrase_hits):
            snippet = normalized[hit.start : hit.end].strip()[:_MAX_MATCH_CHARS]
            if snippet and snippet not in found:
                found.append(snippet)
    spans = _merged(normalized, hits)
    reasons = tuple(dict.fromkeys(reason for span in spans for reason in span.reasons))
    return InjectionSignal(
        suspected=bool(spans), matches=tuple(found), spans=spans, reasons=reasons, normalized=normalized
    )


def _phrase_hit(text: str, match: re.Match[str], reason: str, *, template: bool) -> Hit:
    """The passage a phrase rule's match stands for: its sentence, or for a chat-template marker the
    turn it opens (to its closing marker, or the end of the text)."""
    start, end = sentence_around(text, match.start(), match.end())
    if template:
        start = min(start, match.start())
        if not _CLOSING_MARKER.fullmatch(match.group(0)):
            closing = _CLOSING_MARKER.search(text, match.end())
            end = (
                len(text)
                if closing is None
                else max(end, sentence_around(text, closing.start(), closing.end())[1])
            )
    return Hit(start, end, reason)


def _merged(text: str, hits: list[Hit]) -> tuple[InjectedSpan, ...]:
    spans: list[InjectedSpan] = []
    for hit in sorted(hits, key=lambda hit: (hit.start, -hit.end)):
        if spans and hit.start <= spans[-1].end:
            last = spans[-1]
            end = max(last.end, hit.end)
            reasons = tuple(dict.fromkeys((*last.reasons, hit.reason)))
            spans[-1] = InjectedSpan(last.start, end, text[last.start : end], reasons)
        else:
            spans.append(InjectedSpan(hit.start, hit.end, text[hit.start : hit.end], (hit.reason,)))
    return tuple(spans)


# --- encoded payloads: decoded and scanned again ------------------------------------------------------
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{20,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}){12,}(?![0-9A-Za-z])")
_MAX_PAYLOADS = 20


def _encoded_hits(text: str, *, labels: tuple[str, ...]) -> list[Hit]:
    hits: list[Hit] = []
    for kind, pattern in (("base64", _BASE64), ("hex", _HEX)):
        for match in list(pattern.finditer(text))[:_MAX_PAYLOADS]:
            decoded = _decode(kind, match.group(0))
            if decoded and _detect(decoded, labels=labels, depth=1).suspected:
                hits.append(Hit(match.start(), match.end(), f"{kind} payload that decodes to an injection"))
    return hits


def _decode(kind: str, token: str) -> str | None:
    """The text a base64 or hex token encodes, or None when it is not mostly printable text."""
    import base64
    import binascii

    try:
        if kind == "hex":
            raw = bytes.fromhex(token)
        else:
            bare = token.rstrip("=")
            padded = bare + "=" * (-len(bare) % 4)
            raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    printable = sum(char.isprintable() or char in "\n\t" for char in decoded)
    return decoded if len(decoded) >= 8 and printable >= 0.95 * len(decoded) else None


# --- neutralisation ------------------------------------------------------------------------------------
_CONTROL_TOKEN = re.compile(r"<\|[^<>|\n]{0,40}\|>|\[/?INST\]|<</?SYS>>|</?s>", re.IGNORECASE)
# Fullwidth, small and CJK angle brackets, which NFKC or a tokenizer may fold into < and >.
_LOOKALIKE_BRACKETS = str.maketrans(
    dict.fromkeys("\uff1c\ufe64\u3008", "<") | dict.fromkeys("\uff1e\ufe65\u3009", ">")
)
_TAG = re.compile(r"<(\s*[/!?]?\s*[A-Za-z][^<>\n]{0,200}?)>")
_LONE_TAG_OPEN = re.compile(r"<(?=\s*/?\s*[A-Za-z!?])")
_FENCE = re.compile(r"`{3,}|~{3,}")
_HEADER_MARKER = re.compile(
    r"^([ \t]*)#{2,}[ \t]*(?=(?:instruction|system|response|input|assistant|user)s?\b)",
    re.IGNORECASE | re.MULTILINE,
)


def neutralize(text: str) -> str:
    """Make untrusted text harmless inside the prompt's data frame; idempotent."""
    text = _INVISIBLE.sub("", text).translate(_LOOKALIKE_BRACKETS)
    text = _CONTROL_TOKEN.sub(" ", text)
    text = _TAG.sub(r"&lt;\1&gt;", text)
    text = _LONE_TAG_OPEN.sub("&lt;", text)
    text = _FENCE.sub(lambda match: "'" * min(len(match.group(0)), 3), text)
    return _HEADER_MARKER.sub(r"\1", text)
