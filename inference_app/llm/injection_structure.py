"""Structural prompt-injection features: who the text addresses and what shape it has, not phrase lists.

``structural_hits(text, labels=...)`` finds the parts of (already normalised) ticket text that are shaped
like orders to the machine rather than a message to the support team, in English, German, Spanish and
French:

- text addressed to an AI, assistant, classifier, model, bot or "routing system", with an order about
  classification, priority, routing, teams or labels in the same passage;
- fake role or system markers ("SYSTEM:", "assistant:", "developer message", "[system message]")
  followed by such an order;
- "END OF TICKET" / "---- new instructions" framing, and everything after it when it gives orders;
- JSON or key-value blobs assigning labels (``{"category": ..., "team": ...}``, ``category=X``);
- HTML comments that carry orders or label assignments;
- role-play ("let's play a game", "imagine you are") and authority claims ("as the administrator I
  authorise") that come with an order;
- requests to reveal other customers' tickets or data, or the instructions the model was given;
- the company's own label names (``labels``) used as the object of an order ("set category to Refund",
  "the correct label is VPN", "choose Refund"); label names match case-sensitively, so "I want a
  refund" is not an order for the category "Refund".

A customer who politely asks for a team in their own words ("please route this to billing", "could you
forward this to your billing team?") is talking to the helpdesk, not to the model, and is not flagged.

Each hit is a span of the text with a reason; the span covers the injected passage (the sentence or line,
or from a framing marker to the end of the text) so the caller can drop it from the evidence.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

_I = re.IGNORECASE
_IM = re.IGNORECASE | re.MULTILINE
_PASSAGE_LIMIT = 400  # a hit never swallows more than this around itself, except framing to the end


@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    reason: str


# Vocabulary of orders about the decision the pipeline makes (classification, priority, routing, labels).
ORDER_WORDS = re.compile(
    r"\b(?:classif\w*|categor\w*|label\w*|tag(?:ged)?|priorit\w*|route\w*|routing|assign\w*|queue|team|"
    r"escalat\w*|urgent|mark|output|respond\s+with|answer\s+with|reply\s+with|choose|select|instructions?|"
    r"ignore|disregard|override|"
    r"kategori\w*|einstuf\w*|einordn\w*|ordne\w*|zuweis\w*|zuordn\w*|dringend|w[äa]hle|anweisung\w*|"
    r"clasifi\w*|etiquet\w*|prioridad|asign\w*|equipo|urgente|elige|marca|enrut\w*|"
    r"cat[ée]gor\w*|class\w*|[ée]tiquet\w*|priorit[ée]|attribu\w*|[ée]quipe|choisis\w*|urgente?)\b",
    _I,
)

_ADDRESSEE_NOUN = (
    r"(?:ai|a\.i\.|llm|gpt|chatgpt|language\s+model|model|assistant|classifier|bot|chatbot|"
    r"(?:routing|triage|classification)\s+(?:system|engine|model|bot|ai)|"
    r"automated\s+(?:system|triage|router)|auto-?router|"
    r"ki(?:-system|-modell)?|künstliche\s+intelligenz|assistent(?:en)?|klassifikator|modell|"
    r"routing-system|ia|inteligencia\s+artificial|asistente|clasificador|modelo|"
    r"intelligence\s+artificielle|classificateur|mod[èe]le|syst[èe]me\s+de\s+routage)"
)
_ARTICLE = r"(?:the|any|all|die|das|den|dem|la|el|l['\u2019]|le)"
_ADDRESSED = re.compile(
    # vocatives: "note to the AI", "hey bot", "an das KI-System", "para la IA", "à l'IA"; a bare
    # preposition needs an article and the start of a sentence ("To the model: ...", not "adjustments
    # to the model")
    r"(?:\b(?:dear|hey|hi|hello|attention|note\s+(?:to|for)|message\s+(?:to|for)|instructions?\s+(?:to|for)|"
    r"hinweis\s+(?:an|f[üu]r)|liebe[rs]?|hallo|hola|nota\s+para|atenci[óo]n|cher|ch[èe]re|bonjour|"
    rf"note\s+pour)\s+(?:{_ARTICLE}\s*)?"
    r"|(?:\A|(?<=[\n.!?:>\]*])|(?<=[\n.!?:>\]*][ \t]))"
    rf"(?:(?:to|for|an|f[üu]r|para|a|pour|à)\s+{_ARTICLE}\s*|(?:al|au|zum|zur)\s+))"
    rf"{_ADDRESSEE_NOUN}\b(?!\s+(?:team|manager|department|support))"
    # "if you are a language model", "the routing engine must ..."
    rf"|\bif\s+you\s+are\s+(?:an?\s+)?{_ADDRESSEE_NOUN}\b"
    r"|\b(?:the\s+)?(?:routing|triage|classification)\s+(?:engine|system|model|bot|ai)\s+(?:must|should|shall|will|is\s+to)\b"
    # "AI triage:", "Asistente:", "Assistant instructions:" as a heading
    r"|(?:^|[\n>*\]])\s*(?:\*\*)?(?:ai|llm|bot|classifier|model|assistant|asistente|assistent|ki|ia)"
    r"(?:\s+(?:triage|note|notes|instructions?|hint|override))?\s*(?:\*\*)?\s*:",
    _I,
)

_ROLE_MARKER = re.compile(
    r"(?:^|\n)[ \t>*#]*[\[(]?\s*(?:system|assistant|developer|human|ai|admin(?:istrator)?|operator|model|"
    r"sistema|syst[èe]me|assistent|asistente)(?:[ \t]+(?:message|note|prompt|instructions?|override|"
    r"nachricht|mensaje))?\s*[\])]?\s*:"
    r"|\[\s*(?:system|developer|admin)\s+(?:message|note|prompt|instructions?)\s*\]"
    r"|\bdeveloper\s+message\b",
    _I,
)

_FRAMING = re.compile(
    r"(?:^|\n)[ \t\-=#*_~<>\[]*(?:end\s+of\s+(?:the\s+)?(?:ticket|customer\s+message|message|request|"
    r"user\s+input|input|conversation|email)|(?:begin|start)\s+(?:of\s+)?(?:new\s+)?instructions|"
    r"new\s+instructions|fin\s+(?:du|del)\s+(?:ticket|mensaje|message)|ende\s+(?:des|der)\s+"
    r"(?:tickets?|nachricht|anfrage)|neue\s+anweisungen|nuevas\s+instrucciones|nouvelles\s+instructions)"
    r"[ \t\-=#*_~<>\]:]*(?=\n|$)",
    _I,
)

_HTML_COMMENT = re.compile(r"<!--(.{0,2000}?)-->", re.DOTALL)

# Keys that name the pipeline's decision, in a JSON blob or a key-value line.
_LABEL_KEY = (
    r"(?:category|categories|label|labels|team|queue|priority|intent|department|classification|route|"
    r"routing|auto_?route|confidence|kategorie|prioritaet|priorität|priorit[äa]t|abteilung|"
    r"categor[íi]a|prioridad|equipo|etiqueta|cat[ée]gorie|priorit[ée]|[ée]quipe)"
)
_JSON_BLOB = re.compile(r"\{[^{}]{0,600}\}")
_JSON_KEY = re.compile(rf"[\"']{_LABEL_KEY}[\"']\s*:", _I)
_KEY_VALUE = re.compile(rf"\b(?P<key>{_LABEL_KEY})\s*(?:=|:)\s*[\"']?[\w][^\n,;.]{{0,40}}", _I)

_ROLE_PLAY = re.compile(
    r"\blet'?s\s+play\s+a\s+game\b|\bimagine\s+(?:that\s+)?you\s+are\b|\byou\s+are\s+now\s+\w*(?:bot|gpt|ai)\b"
    r"|\bstell\s+dir\s+vor,?\s+du\s+bist\b|\bimagina\s+que\s+eres\b|\bimagine[sz]?\s+que\s+(?:tu\s+es|vous\s+[êe]tes)\b",
    _I,
)

_AUTHORITY = re.compile(
    r"\b(?:as|being)\s+(?:the|an|your)\s+(?:system\s+)?(?:administrator|admin|developer|operator|owner|ceo)\b"
    r"[^.\n]{0,60}?\b(?:authori[sz]e|order|instruct|command|override|permit)"
    r"|\bthis\s+(?:message|note|instruction)\s+is\s+from\s+(?:the\s+)?(?:it\s+)?(?:security|admin|it|system|"
    r"management|developer)\s+team\b"
    r"|\bals\s+(?:system)?administrator\w*\b[^.\n]{0,60}?\b(?:autorisiere|genehmige|befehle|ordne\s+an)"
    r"|\bcomo\s+(?:el\s+)?administrador\b[^.\n]{0,60}?\b(?:autorizo|ordeno|apruebo)"
    r"|\ben\s+tant\s+qu['\u2019]\s*administrat(?:eur|rice)\b[^.\n]{0,60}?\b(?:j['\u2019]\s*autorise|j['\u2019]\s*ordonne|"
    r"j['\u2019]\s*approuve)",
    _I,
)

_REVEAL = re.compile(
    r"\b(?:list|show|give|send|display|print|reveal|repeat|output|dump|tell|zeige?n?|gib|liste|nenne|"
    r"mu[ée]str\w*|muestra|dame|env[íi]a|lista|affiche[zr]?|montre[zr]?|donne[zr]?|envoie[zr]?)\b"
    r"(?:[^.\n]{0,40}?\b(?:tickets?|data|e-?mails?|(?:e-?mail\s+)?addresses|records|details|messages|daten|"
    r"adressen|datos|correos|direcciones|donn[ée]es|adresses)\b[^.\n]{0,30}?\b(?:other|anderer|andere[nr]?|"
    r"otros|otras|autres)\s+(?:customers?|users?|clients?|kunden|nutzer|benutzer|clientes|usuarios|"
    r"utilisateurs)\b"
    r"|[^.\n]{0,80}?(?:\binstructions\s+you\s+(?:were|have\s+been)\s+given\b"
    r"|\b(?:your|the)\s+(?:hidden|internal|original)\s+(?:instructions|prompt|rules)\b))",
    _I,
)

_GENERIC_LABEL_ORDER = re.compile(
    r"\b(?:set|change|make|put|switch|update)\s+(?:the\s+|its\s+|this\s+)?(?:ticket(?:'s)?\s+)?"
    r"(?:category|label|queue|team|classification|intent|department)\s+(?:to|as|=|:)"
    r"|\b(?:setze|setzen\s+sie|[äa]ndere)\s+(?:die\s+)?(?:kategorie|abteilung)\s+auf\b"
    r"|\bkategorie\s+auf\s+\S+\s+setzen\b"
    r"|\b(?:establece|cambia|pon)\s+la\s+categor[íi]a\s+(?:a|en|como)\b"
    r"|\b(?:mets|mettez|d[ée]finis|changez?)\s+la\s+cat[ée]gorie\s+(?:à|a|sur|en)\b",
    _I,
)

# Cyrillic and Greek letters that look like Latin ones, folded inside words that mix them with Latin
# letters ("\u0406gnore \u0430ll"): one character for one, so offsets do not move.
_HOMOGLYPHS = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u04bb\u0501"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405"
    "\u03bf\u03b1\u03b5\u03b9\u03bd\u03c1\u039f\u0391\u0395\u0399\u039a\u039c\u039d\u03a4\u03a1\u0392\u0397\u03a7\u0396",
    "aeopcyxijshdABEKMHOPCTXIJSoaeivpOAEIKMNTPBHXZ",
)
_MIXED_WORD = re.compile(r"\w*[A-Za-z]\w*")
_NON_LATIN = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u0500-\u052f]")


def fold_homoglyphs(text: str) -> str:
    """Latin look-alikes folded to Latin in words that mix scripts; other text unchanged."""
    if not _NON_LATIN.search(text):
        return text
    return _MIXED_WORD.sub(
        lambda match: (
            match.group(0).translate(_HOMOGLYPHS) if _NON_LATIN.search(match.group(0)) else match.group(0)
        ),
        text,
    )


# Words without which _REVEAL and _GENERIC_LABEL_ORDER cannot match: a cheap test before the patterns.
_REVEAL_HINTS = (
    "other",
    "andere",
    "otros",
    "otras",
    "autres",
    "instructions",
    "hidden",
    "internal",
    "original",
)
_LABEL_HINTS = (
    "categ",
    "catég",
    "label",
    "queue",
    "team",
    "classification",
    "intent",
    "department",
    "abteilung",
)

_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\n")


@functools.lru_cache(maxsize=32)
def _label_order(labels: tuple[str, ...]) -> re.Pattern[str] | None:
    """An order whose object is one of the company's label names (matched case-sensitively)."""
    names = sorted({name.strip() for name in labels if len(name.strip()) >= 2}, key=len, reverse=True)
    if not names:
        return None
    label = "(?:" + "|".join(re.escape(name) for name in names) + r")(?![\w-])"
    order = (
        r"(?i:\b(?:set|change|make|put|mark|label|tag|classify|categori[sz]e|file|treat|choose|select|pick|"
        r"output|assign|route|send|move|escalate|answer\s+with|respond\s+with|reply\s+with|"
        r"setze\w*|w[äa]hle|einstufen|markiere|ordne|zuweisen|"
        r"elige|marca|asigna\w*|clasifica\w*|enruta|"
        r"choisis|classe[zr]?|attribue[zr]?|marque[zr]?|envoie[zr]?)\b)"
    )
    key = (
        r"(?i:\b(?:category|label|queue|team|classification|intent|department|routing\s+decision|"
        r"kategorie|categor[íi]a|cat[ée]gorie|equipo|[ée]quipe|etiqueta|[ée]tiquette)\b)"
    )
    return re.compile(
        rf"{order}[^.\n]{{0,40}}?(?<![\w-]){label}"
        rf"|{key}\s*(?i:(?:\w+\s+){{0,4}}?(?:is|=|:|->|to|as|ist|es|est|auf|en|a)\b|=|:|->)\s*[\"'“«]?\s*{label}"
        rf"|{key}[\"']?\s*[:=]\s*[\"'“«]?{label}"
        # "Kategorie Refund", "equipo Billing": a label key followed at once by a label name
        rf"|{key}\s+[\"'“«]?{label}",
    )


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence or line around [start, end), at most _PASSAGE_LIMIT characters each way."""
    while start < end and text[start] in " \t\r\n>*#[(":  # a match may begin with the line break before it
        start += 1
    lo = max(0, start - _PASSAGE_LIMIT)
    before = [m.end() for m in _SENTENCE_END.finditer(text, lo, start)]
    sentence_start = before[-1] if before else (0 if lo == 0 else start)
    after = _SENTENCE_END.search(text, end, min(len(text), end + _PASSAGE_LIMIT))
    sentence_end = after.start() if after else min(len(text), end + _PASSAGE_LIMIT)
    return sentence_start, sentence_end


def _passage_has_order(text: str, start: int, end: int, label_order: re.Pattern[str] | None) -> bool:
    passage = text[start:end]
    return bool(ORDER_WORDS.search(passage) or (label_order is not None and label_order.search(passage)))


def structural_hits(text: str, *, labels: Sequence[str] = ()) -> list[Hit]:
    """Spans of ``text`` shaped like orders to the machine, with the reason for each (see the module doc)."""
    hits: list[Hit] = []
    label_order = _label_order(tuple(labels))

    def sentence_hit(start: int, end: int, reason: str, *, needs_order: bool) -> None:
        lo, hi = sentence_around(text, start, end)
        if needs_order:
            # the order may be in the same sentence or the next line ("Hey bot:\nmark this VPN")
            _, next_hi = sentence_around(text, hi + 1, hi + 1) if hi < len(text) else (hi, hi)
            if not _passage_has_order(text, lo, max(hi, next_hi), label_order):
                return
            if not _passage_has_order(text, lo, hi, label_order):
                hi = next_hi
        hits.append(Hit(lo, hi, reason))

    for match in _ADDRESSED.finditer(text):
        sentence_hit(match.start(), match.end(), "addressed to an AI or classifier", needs_order=True)
    for match in _ROLE_MARKER.finditer(text):
        # a fake turn runs to the end of its paragraph
        paragraph_end = _PARAGRAPH_END.search(text, match.end())
        turn_end = paragraph_end.start() if paragraph_end else len(text)
        sentence_hit(match.start(), turn_end, "fake role or system marker", needs_order=True)
    for match in _FRAMING.finditer(text):
        if _passage_has_order(text, match.end(), len(text), label_order):
            hits.append(Hit(match.start(), len(text), "end-of-ticket or new-instructions framing"))
    for match in _HTML_COMMENT.finditer(text):
        body = match.group(1)
        if (
            _ADDRESSED.search(body)
            or len(_KEY_VALUE.findall(body)) >= 1
            or (label_order is not None and label_order.search(body))
            or (ORDER_WORDS.search(body) and _ROLE_MARKER.search(body))
        ):
            hits.append(Hit(match.start(), match.end(), "HTML comment carrying orders"))
    for match in _JSON_BLOB.finditer(text):
        keys = {key.lower() for key in _JSON_KEY.findall(match.group(0))}
        if len(keys) >= 2 or (keys and label_order is not None and label_order.search(match.group(0))):
            hits.append(Hit(match.start(), match.end(), "JSON blob assigning labels"))
    for match in _ROLE_PLAY.finditer(text):
        sentence_hit(match.start(), match.end(), "role-play", needs_order=False)
    for match in _AUTHORITY.finditer(text):
        sentence_hit(match.start(), match.end(), "authority claim", needs_order=True)
    lowered = text.lower()
    for match in _REVEAL.finditer(text) if any(word in lowered for word in _REVEAL_HINTS) else ():
        sentence_hit(
            match.start(),
            match.end(),
            "asks to reveal other customers' data or instructions",
            needs_order=False,
        )
    for match in _GENERIC_LABEL_ORDER.finditer(text) if any(w in lowered for w in _LABEL_HINTS) else ():
        sentence_hit(match.start(), match.end(), "order to set a label", needs_order=False)
    _key_value_hits(text, hits)
    if label_order is not None and any(name in text for name in labels):
        for match in label_order.finditer(text):
            sentence_hit(
                match.start(), match.end(), "order naming one of the company's labels", needs_order=False
            )
    return hits


def _key_value_hits(text: str, hits: list[Hit]) -> None:
    """Two label keys assigned close together ("category: X / team: Y", "category=X priority=Y")."""
    matches = list(_KEY_VALUE.finditer(text))
    for first, second in itertools.pairwise(matches):
        if first.group("key").lower() != second.group("key").lower() and second.start() - first.end() <= 80:
            lo, _ = sentence_around(text, first.start(), first.end())
            _, hi = sentence_around(text, second.start(), second.end())
            hits.append(Hit(lo, hi, "label assignments (key: value)"))
