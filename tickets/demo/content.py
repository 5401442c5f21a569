"""The demo company's hand-written content, read from ``content.json`` beside this module.

Lumenfield is a fictional mid-size SaaS company that sells a project-management and invoicing product
("Lumenfield Projects") to small businesses, and also runs its own internal IT helpdesk for staff.
Everything in the file was written for the demo; ``tickets.demo.generator`` composes resolved past
tickets and a few new incoming ones from it, and :func:`check_content` says what is inconsistent.

The file (UTF-8 JSON, edit it by hand) holds one object:

- ``company_name``: a string;
- ``teams``: ``[{"name", "description"}]`` (5 to 8 teams);
- ``categories``: ``[{"name", "team", "priority", "sla_hours", "description", "problems"}]``
  (15 to 30; ``team`` names a team; ``priority`` is one of low, normal, high, urgent and ``sla_hours``
  fits it; at least 6 ``problems``);
- a problem is ``{"subject", "body", "resolutions"}``: what a customer wrote (3 to 10 words in the
  subject) and one or more replies an agent sent to exactly that problem, saying what was done and
  what the customer should do next (a past ticket pairs a problem with one of its own resolutions);
  every subject, body and resolution is unique (subjects are unique within a category);
- ``first_names``, ``last_names``: 30 or more unique strings each;
- ``incoming``: 8 new, unresolved tickets ``[{"subject", "body", "category", "problems"}]``, shown
  verbatim; ``problems`` names (by subject) the problems of that category it is an instance of, its
  problem family, often one problem written in several languages: a resolution of any of them fits.

Past tickets are written in English, German and Spanish, like the customers who send them.

Problems and resolutions may use these ``str.format`` placeholders only: ``{name}``, ``{invoice}``,
``{project}``, ``{device}``, ``{browser}``, ``{amount}``, ``{date}``; a resolution uses only
``{name}`` and the placeholders of its own problem, filled with the same values as the problem (so a
reply repeats the customer's amount or invoice). Incoming tickets use none.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTENT_FILE = Path(__file__).with_name("content.json")


@dataclass(frozen=True)
class DemoTeam:
    name: str
    description: str


@dataclass(frozen=True)
class DemoProblem:
    subject: str
    body: str
    resolutions: tuple[str, ...]


@dataclass(frozen=True)
class DemoCategory:
    name: str
    team: str
    priority: str
    sla_hours: int
    description: str
    problems: tuple[DemoProblem, ...]


@dataclass(frozen=True)
class DemoIncoming:
    subject: str
    body: str
    category: str
    problems: tuple[str, ...]
    """The subjects of the category's problems this ticket is an instance of (its problem family)."""


def _category(item: dict[str, Any]) -> DemoCategory:
    return DemoCategory(
        name=item["name"],
        team=item["team"],
        priority=item["priority"],
        sla_hours=int(item["sla_hours"]),
        description=item["description"],
        problems=tuple(
            DemoProblem(problem["subject"], problem["body"], tuple(problem["resolutions"]))
            for problem in item["problems"]
        ),
    )


_DATA: dict[str, Any] = json.loads(CONTENT_FILE.read_text(encoding="utf-8"))

COMPANY_NAME: str = _DATA["company_name"]
ALLOWED_PLACEHOLDERS: frozenset[str] = frozenset(
    {"name", "invoice", "project", "device", "browser", "amount", "date"}
)
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
TEAMS: tuple[DemoTeam, ...] = tuple(DemoTeam(item["name"], item["description"]) for item in _DATA["teams"])
CATEGORIES: tuple[DemoCategory, ...] = tuple(_category(item) for item in _DATA["categories"])
FIRST_NAMES: tuple[str, ...] = tuple(_DATA["first_names"])
LAST_NAMES: tuple[str, ...] = tuple(_DATA["last_names"])
INCOMING: tuple[tuple[str, str, str], ...] = tuple(
    (item["subject"], item["body"], item["category"]) for item in _DATA["incoming"]
)
"""New, unresolved tickets: (subject, body, the category they really belong to)."""
INCOMING_PROBLEMS: tuple[DemoIncoming, ...] = tuple(
    DemoIncoming(item["subject"], item["body"], item["category"], tuple(item["problems"]))
    for item in _DATA["incoming"]
)
"""The same tickets with the problem (family) each one is an instance of."""

_SLA_RANGES: dict[str, tuple[int, int]] = {
    "urgent": (1, 6),
    "high": (4, 12),
    "normal": (12, 48),
    "low": (36, 120),
}


def _placeholders(text: str) -> set[str]:
    return {field for _literal, field, _spec, _conv in string.Formatter().parse(text) if field is not None}


def _resolution_problems(problem: DemoProblem, where: str) -> list[str]:
    """A problem needs its own resolutions, each using only the problem's placeholders (and the name)."""
    problems: list[str] = []
    if not problem.resolutions:
        problems.append(f"{where}: needs at least one resolution")
    try:
        allowed = _placeholders(problem.subject) | _placeholders(problem.body) | {"name"}
    except ValueError:
        return problems  # reported as malformed braces
    for index, resolution in enumerate(problem.resolutions):
        problems.extend(_placeholder_problems(resolution, f"{where} resolution {index}"))
        try:
            extra = _placeholders(resolution) - allowed
        except ValueError:
            continue
        if extra:
            problems.append(f"{where} resolution {index}: placeholders {sorted(extra)} not in its problem")
    return problems


def _placeholder_problems(text: str, where: str) -> list[str]:
    """Check one template string for unknown placeholders or malformed braces."""
    problems: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"{where}: malformed braces ({exc})"]
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in ALLOWED_PLACEHOLDERS:
            problems.append(f"{where}: unknown placeholder {field!r}")
        if spec or conversion:
            problems.append(f"{where}: placeholder {field!r} must not use a format spec or conversion")
    return problems


def check_content() -> list[str]:
    """Return a list of problems with the content (empty when consistent)."""
    problems: list[str] = []

    if not COMPANY_NAME.strip():
        problems.append("COMPANY_NAME is empty")

    team_names = [team.name for team in TEAMS]
    if not 5 <= len(TEAMS) <= 8:
        problems.append(f"expected 5-8 teams, found {len(TEAMS)}")
    if len(set(team_names)) != len(team_names):
        problems.append("team names are not unique")
    for team in TEAMS:
        if not team.description.strip():
            problems.append(f"team {team.name!r} has no description")

    category_names = [category.name for category in CATEGORIES]
    if not 15 <= len(CATEGORIES) <= 30:
        problems.append(f"expected 15-30 categories, found {len(CATEGORIES)}")
    if len(set(category_names)) != len(category_names):
        problems.append("category names are not unique")

    seen_texts: set[str] = set()
    for category in CATEGORIES:
        where = f"category {category.name!r}"
        if category.team not in team_names:
            problems.append(f"{where}: unknown team {category.team!r}")
        if category.priority not in PRIORITIES:
            problems.append(f"{where}: invalid priority {category.priority!r}")
        else:
            low, high = _SLA_RANGES[category.priority]
            if not low <= category.sla_hours <= high:
                problems.append(
                    f"{where}: sla_hours {category.sla_hours} outside {low}-{high} for {category.priority}"
                )
        if not category.description.strip():
            problems.append(f"{where}: empty description")
        if len(category.problems) < 6:
            problems.append(f"{where}: needs at least 6 problems, has {len(category.problems)}")
        for index, problem in enumerate(category.problems):
            item = f"{where} problem {index}"
            subject, body = problem.subject, problem.body
            if not 3 <= len(subject.split()) <= 10:
                problems.append(f"{item}: subject should have 3-10 words: {subject!r}")
            if not body.strip():
                problems.append(f"{item}: empty body")
            for text in (subject, body):
                problems.extend(_placeholder_problems(text, item))
                if text in seen_texts:
                    problems.append(f"{item}: duplicate text {text!r}")
                seen_texts.add(text)
            problems.extend(_resolution_problems(problem, item))
            for resolution in problem.resolutions:
                if resolution in seen_texts:
                    problems.append(f"{item}: duplicate resolution {resolution[:40]!r}")
                seen_texts.add(resolution)

    for team_name in team_names:
        count = sum(1 for category in CATEGORIES if category.team == team_name)
        if count < 2:
            problems.append(f"team {team_name!r} has only {count} categories (needs at least 2)")

    for label, names in (("FIRST_NAMES", FIRST_NAMES), ("LAST_NAMES", LAST_NAMES)):
        if len(names) < 30:
            problems.append(f"{label} should have 30 names, has {len(names)}")
        if len(set(names)) != len(names):
            problems.append(f"{label} contains duplicates")

    if len(INCOMING) != 8:
        problems.append(f"expected 8 incoming tickets, found {len(INCOMING)}")
    subjects = {category.name: {problem.subject for problem in category.problems} for category in CATEGORIES}
    for index, incoming in enumerate(INCOMING_PROBLEMS):
        item = f"incoming {index}"
        subject, body, category_name = incoming.subject, incoming.body, incoming.category
        if category_name not in category_names:
            problems.append(f"{item}: unknown category {category_name!r}")
        else:
            unknown = [name for name in incoming.problems if name not in subjects[category_name]]
            if unknown or not incoming.problems:
                problems.append(
                    f"{item}: {unknown or 'no problems'} not among the problems of {category_name!r}"
                )
        if not subject.strip() or not body.strip():
            problems.append(f"{item}: empty subject or body")
        for text in (subject, body):
            if "{" in text or "}" in text:
                problems.append(f"{item}: braces are not allowed in incoming tickets")
            if text in seen_texts:
                problems.append(f"{item}: copies a template or resolution verbatim")

    return problems
