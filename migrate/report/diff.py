"""Property changes as people read them: nested, list entries matched by their key, ids relative to the group.

A step's :class:`~migrate.plan.Change` holds the whole value before and after (a scale set's
``vaultCertificates`` list, say). Shown as two long lists, one added secret is hard to see; :func:`diff` walks
both values and yields only what differs, matching list entries by a key they all carry (``certificateUrl``,
``url``, ``name``, ``id``), so one added secret is one ``+`` line (``az deployment what-if`` shows arrays the
same way). Pure functions.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

from ._common import ChangeKind, value

IDENTITY_KEYS = ("certificateUrl", "url", "name", "id")  # what identifies an entry of a list of objects
_ABSENT: Any = object()  # a key or entry that is not there (None is a value)
_GROUP_PREFIX = re.compile(r"/subscriptions/[^/\"]+/resourceGroups/([^/\"]+)/providers/", re.IGNORECASE)


@dataclass(frozen=True)
class DiffLine:
    kind: ChangeKind
    path: str
    before: Any  # None when absent
    after: Any


def diff(path: str, before: Any, after: Any) -> list[DiffLine]:
    """What differs between ``before`` and ``after`` (``None``: absent), as leaf-most changes in path order."""
    return _diff(path, _ABSENT if before is None else before, _ABSENT if after is None else after)


def _line(path: str, before: Any, after: Any) -> DiffLine:
    kind: ChangeKind = "+" if before is _ABSENT else "-" if after is _ABSENT else "~"
    return DiffLine(kind, path, None if before is _ABSENT else before, None if after is _ABSENT else after)


def _diff(path: str, before: Any, after: Any) -> list[DiffLine]:
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(before) + [k for k in after if k not in before]
        return [line for k in keys for line in _diff(f"{path}.{k}", before.get(k, _ABSENT), after.get(k, _ABSENT))]
    if isinstance(before, list) and isinstance(after, list):
        key = _identity_key(before + after)
        if key is not None:
            return _keyed_lists(path, key, before, after)
        if all(not isinstance(v, (dict, list)) for v in before + after):
            removed = [_line(f"{path}[]", v, _ABSENT) for v in before if v not in after]
            return removed + [_line(f"{path}[]", _ABSENT, v) for v in after if v not in before]
    return [_line(path, before, after)]


def _identity_key(entries: list[Any]) -> str | None:
    """The first of IDENTITY_KEYS every entry (all objects) carries with distinct values, if any."""
    if not entries or not all(isinstance(e, dict) for e in entries):
        return None
    for key in IDENTITY_KEYS:
        if all(isinstance(e.get(key), str) for e in entries):
            return key
    return None


def _keyed_lists(path: str, key: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[DiffLine]:
    old = {e[key]: e for e in before}
    new = {e[key]: e for e in after}
    if len(old) != len(before) or len(new) != len(after):  # duplicate keys: entries cannot be told apart
        return [_line(path, before, after)]
    out: list[DiffLine] = []
    for name in list(old) + [n for n in new if n not in old]:
        out += _diff(f"{path}[{key}={name}]", old.get(name, _ABSENT), new.get(name, _ABSENT))
    return out


def relative_ids(text: str, group: str | None) -> str:
    """ARM ids in ``group`` (the cluster's resource group) shortened to ``./<provider>/<type>/<name>``."""
    if not group:
        return text
    return _GROUP_PREFIX.sub(lambda m: "./" if m.group(1).lower() == group.lower() else m.group(0), text)


def render_line(line: DiffLine, group: str | None, width: int, indent: str) -> list[str]:
    """``kind path: before -> after`` (``(absent)`` for a missing side), wrapped to ``width`` under the path."""
    text = f"{line.kind} {line.path}: {value(line.before)} -> {value(line.after)}"
    text = relative_ids(text, group)
    if len(indent) + len(text) <= width:
        return [indent + text]
    wrapped = textwrap.wrap(text, width=max(40, width - len(indent)), subsequent_indent="    ",
                            break_long_words=True, break_on_hyphens=False)
    return [indent + part for part in wrapped]
