"""HTML and quoted-printable e-mail bodies as helpdesks forward them, each carrying personal data, and a
check that none of that data is left in a text (for the redaction tests at every layer)."""

from __future__ import annotations

import re

# The personal data in the shapes below, compact (what is left of them once separators are removed).
CARDS = ("4111111111111111", "5500005555555559")
IBANS = ("DE89370400440532013000",)
PHONES = ("1701234567", "3012345678", "4155552671", "612345678")
EMAILS = ("ana.lopez@example.com",)

_SEPARATORS = re.compile(r"[\s\-./()+\u2010-\u2015\u2212]")

# (name, subject, body)
SHAPES: list[tuple[str, str, str]] = [
    (
        "table, card in the next cell",
        "Charged twice",
        "<table><tr><td>Card</td><td>4111 1111 1111 1111</td></tr>"
        "<tr><td>IBAN</td><td>DE89 3704 0044 0532 0130 00</td></tr></table>",
    ),
    (
        "cells without a table",
        "Refund",
        "<td>Name</td><td>Ana</td><td>Card</td><td>5500005555555559</td><td>Phone</td><td>0170 1234567</td>",
    ),
    (
        "table with header row",
        "Callback",
        "<table><tr><th>Mail</th><th>Phone</th></tr>"
        "<tr><td>ana.lopez@example.com</td><td>+49 170 1234567</td></tr></table>",
    ),
    (
        "divs",
        "Call me",
        "<div>Call me</div><div>+49 170 1234567</div><div>or</div><div>ana.lopez@example.com</div>",
    ),
    ("br", "Details", "Card:<br>4111 1111 1111 1111<br>Tel<br/>+49 (0)30 12345678<br>Bye"),
    (
        "paragraphs",
        "Bank details",
        "<p>IBAN</p><p>DE89370400440532013000</p><p>Mail</p><p>ana.lopez@example.com</p>",
    ),
    (
        "lists",
        "My data",
        "<ul><li>Card 4111-1111-1111-1111</li><li>+49 170 1234567</li></ul>"
        "<ol><li>5500 0055 5555 5559</li><li>(415) 555-2671</li></ol>",
    ),
    (
        "entities",
        "Entities",
        "Tel:&nbsp;&#43;49&nbsp;170&nbsp;1234567, card&nbsp;4111&#32;1111&#x20;1111&nbsp;1111, "
        "mail ana.lopez&#64;example.com, IBAN&nbsp;DE89&nbsp;3704&nbsp;0044&nbsp;0532&nbsp;0130&nbsp;00",
    ),
    (
        "nested quotes of a forwarded mail",
        "Fwd: Fwd: refund",
        "<div>See below</div><blockquote><div>---------- Forwarded message ---------</div>"
        "<div>From: Ana &lt;ana.lopez@example.com&gt;</div><blockquote><div>Tel</div>"
        "<div>+49 170 1234567</div><div>Card</div><div>4111 1111 1111 1111</div></blockquote></blockquote>",
    ),
    (
        "adjacent spans",
        "Spans",
        "<span>Card</span><span>4111 1111 1111 1111</span><span>Tel</span><span>+49 170 1234567</span>",
    ),
    (
        "inline markup inside a number",
        "Inline",
        "<p>Call <b>+49</b> <i>170</i> 1234567 or mail <a href='mailto:ana.lopez@example.com'>"
        "ana.lopez@example.com</a></p><p><a href='tel:+491701234567'>call</a></p>",
    ),
    (
        "script, style and comments",
        "Hidden",
        "<style>td{color:red}</style><!-- 4111 1111 1111 1111 -->"
        "<div>Card</div><div>4111 1111 1111 1111</div>"
        "<script>var m = 'ana.lopez@example.com';</script><div>ok</div>",
    ),
    (
        "Outlook markup",
        "Outlook",
        "<html><head><meta charset='utf-8'></head><body><table><tr><td><p class=MsoNormal>Card<o:p></o:p>"
        "</p></td><td><p class=MsoNormal>4111&nbsp;1111&nbsp;1111&nbsp;1111<o:p></o:p></p></td></tr>"
        "</table><p class=MsoNormal>Mobil<o:p></o:p></p><p class=MsoNormal>0170/1234567</p></body></html>",
    ),
    (
        "upper-case tags, national numbers",
        "Upper",
        "<DIV>Call me</DIV><DIV>030 12345678</DIV><DIV>or</DIV><DIV>612 345 678</DIV>",
    ),
    (
        "quoted-printable HTML",
        "QP",
        '<html><body><table><tr><td class=3D"k">Card</td><td>4111 1111 =\n1111 1111</td></tr></table>'
        "<div>Tel</div><div>+49 170 123=\n4567</div><div>ana.lopez=40example.com</div></body></html>",
    ),
    (
        "quoted-printable text",
        "QP text",
        "Hallo,=20\nbitte zur=C3=BCckrufen: +49 170 12=\n34567.\nIBAN: DE89 3704 0044 05=\n32 0130 00\n"
        "Karte 4111 1111 1111 =\n1111, Mail ana.lopez=40example.com",
    ),
    (
        "quoted-printable soft breaks, CRLF",
        "QP CRLF",
        "Card 4111 1111=\r\n 1111 1111\r\nTel +49 170=\r\n 1234567\r\nMail: ana.lopez@exam=\r\nple.com",
    ),
    (
        "typographic dashes and thin spaces",
        "Dashes",
        "<div>Tel</div><div>+49&thinsp;170&ndash;1234567</div><div>Karte</div><div>4111&#8209;1111&#8209;1111"
        "&#8209;1111</div>",
    ),
    (
        "plain text, glued to words by a flattener",
        "Plain",
        "Card:4111 1111 1111 1111, Tel:+49 170 1234567, Mail:ana.lopez@example.com",
    ),
]


def leaks(text: str) -> list[str]:
    """The personal data of :data:`SHAPES` still in ``text`` (compared without separators)."""
    compact = _SEPARATORS.sub("", text).lower()
    found = [value for value in CARDS + IBANS + PHONES if value.lower() in compact]
    found += [email for email in EMAILS if email in text.lower() or email.replace(".", "") in compact]
    return found
