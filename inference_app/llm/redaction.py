"""Redaction of personal data from ticket text before it reaches a language model.

``redact(text)`` replaces e-mail addresses, phone numbers, payment cards, IBANs, bank accounts, US social
security numbers, national identifiers (see :mod:`.identifiers`), IPv4 addresses and URLs carrying
credentials with typed placeholders (``[EMAIL]``, ``[PHONE]``, ...) and counts what it replaced. It is
tuned to leave ordinary support content alone: version numbers, error codes, dates, times, order and
ticket numbers, prices.

Every pattern is compiled once at import. Checksums (Luhn for cards, mod-97 for IBANs) and context
(a label such as "order" or "Tel." just before a number) decide the ambiguous cases. Phone numbers are
found twice: by ``phonenumbers`` (numbers valid in a known numbering plan), then by the patterns here
(labelled or formatted numbers the library does not know). Names and postal addresses are not redacted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from inference_app.llm.identifiers import (
    could_read_as_phone,
    national_id_spans,
    phone_candidates,
    reads_as_phone,
)

EMAIL = "EMAIL"
PHONE = "PHONE"
CARD = "CARD"
IBAN = "IBAN"
ACCOUNT = "ACCOUNT"
SSN = "SSN"
NATIONAL_ID = "NATIONAL_ID"
IP = "IP"
SECRET = "SECRET"  # noqa: S105 (a placeholder name, not a password)
KINDS = (SECRET, EMAIL, IBAN, CARD, SSN, NATIONAL_ID, ACCOUNT, IP, PHONE)


@dataclass(frozen=True)
class Redacted:
    """Text with personal data replaced, and how many of each kind were replaced (kinds found only)."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# --- patterns ------------------------------------------------------------------------------------------
_I = re.IGNORECASE

_URL = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://[^\s<>\"'`]+", _I)
_URL_TRAILING = ".,;:!?)]}'\""
_URL_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s@?#]*:[^/\s@?#]*@", _I)
_URL_SECRET_PARAM = re.compile(
    r"[?&#;][\w.-]*?(?:token|key|secret|pass(?:word|wd)?|pwd|sig(?:nature)?|auth|session(?:id)?|sid|jwt"
    r"|credential)=[^&#\s]",
    _I,
)
_BEARER = re.compile(
    r"\b(?P<label>bearer|token)(?P<sep>[ \t]*[:=]?[ \t]*)(?P<value>[A-Za-z0-9._~+/=-]{20,})", _I
)
_PASSWORD = re.compile(
    r"\b(?P<label>password|passwort|kennwort|contrase[ñn]a|clave|mot de passe|passwd|pwd)"
    r"(?P<sep>[ \t]*[:=][ \t]*)(?P<value>\S+)",
    _I,
)

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,24}(?![\w-])")

_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?![\w])", _I)
_IBAN_HEAD = re.compile(r"\b[A-Z]{2}\d{2}[ ]?$", _I)  # the digits of an IBAN that failed its checksum

_CARD = re.compile(r"(?<![\w+.,-])\d(?:[ \-\u2010-\u2015\u2212]?\d){12,18}(?![\w]|[.,]\d)")

_SSN_DASHED = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_SSN_LABELLED = re.compile(
    r"\b(?P<label>ssn|social security(?: number| no\.?| #)?)(?P<sep>[ \t]*(?:#|:|is)?[ \t]*)"
    r"(?P<value>\d{3}[ ]?\d{2}[ ]?\d{4})(?!\w)",
    _I,
)

_ACCOUNT = re.compile(
    r"\b(?P<label>(?:bank[ \t]+)?(?:account|acct|a/c|konto(?:nummer)?|kto|cuenta|compte|conto)\b\.?"
    r"(?:[ \t]*-?[ \t]*(?:number|num\.?|no\.?|nr\.?|n[º°o]\.?|#|:))*"
    r"(?:[ \t]+(?:is|ist|es|est|è))?[ \t]*:?[ \t]*)"
    r"(?P<value>\d(?:[ -]?\d){5,29})(?![\w]|[.,]\d)",
    _I,
)

_IP_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IP = re.compile(rf"(?<![\w.]){_IP_OCTET}(?:\.{_IP_OCTET}){{3}}(?::\d{{1,5}})?(?![\w]|\.\d)")
_VERSION_LABEL = re.compile(r"(?:version|versi[óo]n|ver\.?|build|release|firmware|fw|v)[ \t]*:?[ \t]*$", _I)

# Dates, times and prices are hidden from the phone pass, whose digit groups they resemble.
_PROTECTED = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?![\w-])"
    r"|\b\d{4}/\d{1,2}/\d{1,2}\b"
    r"|\b\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?![\w]|[./-]\d)"
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"
    r"|(?<![\w.+])[vV]?\d{1,2}(?:\.\d{1,5}){1,3}(?![\w]|\.\d)"
    r"|(?:[$€£¥]|\b(?:USD|EUR|GBP|CHF|MXN)\b)[ \t]?\d[\d.,' \t]{0,24}\d"
    r"|\b\d[\d.,']{0,24}[ \t]?(?:[$€£¥]|(?:USD|EUR|GBP|CHF|MXN|euros?|dollars?|d[óo]lares|pesos)\b)",
    _I,
)
_SENTINEL = "\ue000"
_PRIVATE_USE = re.compile("[\ue000-\ue4ff]")
_SENTINEL_BODY = re.compile(_SENTINEL + r"([\ue100-\ue4ff]+)" + _SENTINEL)

_PHONE = re.compile(
    r"(?<!\w)(?<!\d[.,:/-])"
    r"(?:\+[ \t]?)?"
    r"(?:\([ \t]?\d{1,5}[ \t]?\)|\d{1,5})"
    r"(?:(?:[ \t]|[ \t]?[-./][ \t]?)?(?:\([ \t]?\d{1,5}[ \t]?\)|\d{1,5})){1,7}"
    r"(?![\w]|[.,]\d)"
)
_PHONE_US = re.compile(r"^(?:\+?1[ .-]?)?(?:\([2-9]\d\d\)[ ]?|[2-9]\d\d[ .-])\d{3}[ .-]\d{4}$")
_PHONE_ES_GROUPED = re.compile(r"^[6789]\d{1,2}(?:[ .-]\d{2,3}){2,3}$")
_PHONE_LABEL = re.compile(
    r"\b(?:tel|phone|telephone|call|ring|text|sms|mobile|cell|fax|whatsapp|telefon|handy|mobil|"
    r"rufnummer|anruf|tel[ée]fono|m[óo]vil|celular|llam\w*|t[ée]l[ée]phone|t[ée]l|appel\w*)"
    r"\b[^\d\n]{0,24}$",
    _I,
)
# The phone labels anywhere (no word boundary, no distance): a window without one in the lookbehind
# before it cannot hold a labelled number (labels are letters, never inside a window).
_PHONE_LABEL_ANYWHERE = re.compile(_PHONE_LABEL.pattern.split(r")\b[^", 1)[0].removeprefix(r"\b") + ")", _I)
_NUMBER_LABEL = re.compile(
    r"(?:order|ticket|invoice|case|ref(?:erence)?|tracking|customer|client|contract|serial|sku|part|"
    r"model|id|bestell\w*|auftrag\w*|rechnung\w*|kunden\w*|vertrag\w*|pedido|factura|referencia|"
    r"n[úu]mero de (?:pedido|cliente|factura)|commande|facture|dossier)"
    r"\b[ \t]*(?:number|num\.?|no\.?|nr\.?|n[º°o]\.?|#|:|-)*[ \t]*#?$",
    _I,
)
_LOOKBEHIND = 40


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _before(text: str, start: int) -> str:
    return text[max(0, start - _LOOKBEHIND) : start]


# --- passes --------------------------------------------------------------------------------------------
Replacer = Callable[[re.Match[str], str], "str | None"]


def _url(match: re.Match[str], text: str) -> str | None:
    url = match.group(0)
    stripped = url.rstrip(_URL_TRAILING)
    if _URL_USERINFO.search(stripped) or _URL_SECRET_PARAM.search(stripped):
        return "[SECRET]" + url[len(stripped) :]
    return None


def _labelled(kind: str) -> Replacer:
    def replace(match: re.Match[str], text: str) -> str:
        return f"{match.group('label')}{match.group('sep')}[{kind}]"

    return replace


def _email(match: re.Match[str], text: str) -> str:
    return "[EMAIL]"


def _iban(match: re.Match[str], text: str) -> str | None:
    # Groups are matched greedily, so a word after the IBAN ("... 00 THEN") may be caught: try shorter.
    candidate = match.group(0)
    cut = len(candidate)
    while cut > 0:
        compact = candidate[:cut].replace(" ", "").upper()
        if _iban_valid(compact):
            return "[IBAN]" + candidate[cut:]
        cut = candidate.rfind(" ", 0, cut)
    return None


def _card(match: re.Match[str], text: str) -> str | None:
    candidate = match.group(0)
    digits = "".join(str(int(char)) for char in candidate if char.isdecimal())  # full-width digits too
    if digits[0] not in "23456" or len(set(digits)) == 1 or not _luhn_valid(digits):
        return None
    before = _before(text, match.start())
    if _NUMBER_LABEL.search(before) or _IBAN_HEAD.search(before):
        return None
    return "[CARD]"


def _ssn(match: re.Match[str], text: str) -> str:
    return "[SSN]"


def _account(match: re.Match[str], text: str) -> str:
    return f"{match.group('label')}[ACCOUNT]"


def _ip(match: re.Match[str], text: str) -> str | None:
    if _VERSION_LABEL.search(_before(text, match.start())):
        return None
    return "[IP]"


def _phone(match: re.Match[str], text: str) -> str | None:
    candidate = match.group(0)
    digits = sum(char.isdigit() for char in candidate)
    before = _before(text, match.start())
    if candidate.startswith("+"):
        return "[PHONE]" if 8 <= digits <= 15 else None
    if _NUMBER_LABEL.search(before):
        return None
    if candidate.startswith("00") and candidate[2:3] in "123456789" and 10 <= digits <= 15:
        return "[PHONE]"  # 0049 30 1234567
    if _PHONE_LABEL.search(before):
        return "[PHONE]" if 7 <= digits <= 15 else None
    if _PHONE_US.match(candidate):
        return "[PHONE]"
    national = candidate.lstrip("( \t")
    if national.startswith("0") and not national.startswith("00") and 9 <= digits <= 12:
        return "[PHONE]"  # national trunk prefix: 030 1234567, 0171-1234567, 06 12 34 56 78
    if digits == 9 and _PHONE_ES_GROUPED.match(candidate):
        return "[PHONE]"  # 612 345 678, 91 123 45 67
    return None


_PASSES: tuple[tuple[str, re.Pattern[str], Replacer], ...] = (
    (SECRET, _URL, _url),
    (SECRET, _BEARER, _labelled(SECRET)),
    (SECRET, _PASSWORD, _labelled(SECRET)),
    (EMAIL, _EMAIL, _email),
    (IBAN, _IBAN, _iban),
    (CARD, _CARD, _card),
    (SSN, _SSN_DASHED, _ssn),
    (SSN, _SSN_LABELLED, _labelled(SSN)),
)
# after the national identifiers, whose digits an account or phone pattern could take apart
_LATER_PASSES: tuple[tuple[str, re.Pattern[str], Replacer], ...] = (
    (ACCOUNT, _ACCOUNT, _account),
    (IP, _IP, _ip),
)


def _apply(text: str, kind: str, pattern: re.Pattern[str], replacer: Replacer, counts: Counter[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        replacement = replacer(match, text)
        if replacement is None:
            return match.group(0)
        counts[kind] += 1
        return replacement

    return pattern.sub(substitute, text)


def _national_ids(text: str, counts: Counter[str]) -> str:
    parts: list[str] = []
    end = 0
    for span in national_id_spans(text):
        parts += [text[end : span.start], f"[{NATIONAL_ID}]"]
        end = span.end
        counts[NATIONAL_ID] += 1
    return "".join(parts) + text[end:] if parts else text


def _phone_numbers(text: str, counts: Counter[str]) -> str:
    """Numbers ``phonenumbers`` finds valid, where they read as phone numbers (not after "order")."""
    parts: list[str] = []
    end = 0

    def worth_matching(offset: int, window: str) -> bool:
        return could_read_as_phone(window) or _PHONE_LABEL_ANYWHERE.search(_before(text, offset)) is not None

    for candidate in phone_candidates(text, worth_matching=worth_matching):
        before = _before(text, candidate.start)
        if _NUMBER_LABEL.search(before):
            continue
        if not reads_as_phone(candidate.raw, labelled=_PHONE_LABEL.search(before) is not None):
            continue
        parts += [text[end : candidate.start], f"[{PHONE}]"]
        end = candidate.end
        counts[PHONE] += 1
    return "".join(parts) + text[end:] if parts else text


def _encode_index(index: int) -> str:
    chars = []
    while True:
        index, digit = divmod(index, 1024)
        chars.append(chr(0xE100 + digit))
        if not index:
            return _SENTINEL + "".join(chars) + _SENTINEL


def _decode_index(body: str) -> int:
    return sum((ord(char) - 0xE100) * 1024**position for position, char in enumerate(body))


def _without_protected(text: str) -> tuple[str, list[str]]:
    """Swap dates, times, versions and prices for placeholders that no digit pattern matches."""
    kept: list[str] = []

    def hide(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return _encode_index(len(kept) - 1)

    return _PROTECTED.sub(hide, text), kept


def _restore(text: str, kept: list[str]) -> str:
    if not kept:
        return text
    return _SENTINEL_BODY.sub(lambda match: kept[_decode_index(match.group(1))], text)


def redact(text: str) -> Redacted:
    """Replace personal data in ``text`` with typed placeholders such as ``[EMAIL]``; see the module doc."""
    counts: Counter[str] = Counter()
    if _PRIVATE_USE.search(text):
        text = _PRIVATE_USE.sub(" ", text)  # the placeholders below are made of these characters
    for kind, pattern, replacer in _PASSES:
        text = _apply(text, kind, pattern, replacer, counts)
    text = _national_ids(text, counts)
    for kind, pattern, replacer in _LATER_PASSES:
        text = _apply(text, kind, pattern, replacer, counts)
    shielded, kept = _without_protected(text)
    shielded = _phone_numbers(shielded, counts)
    shielded = _apply(shielded, PHONE, _PHONE, _phone, counts)
    text = _restore(shielded, kept)
    return Redacted(text=text, counts={kind: counts[kind] for kind in KINDS if counts[kind]})
