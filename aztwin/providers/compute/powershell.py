"""A small PowerShell interpreter over a node's model: the cmdlets the runbooks run through ``RunPowerShellScript``
(docs/twin.md, "Run command"). Statements split on ``;`` and new lines, pipelines on ``|``; objects flow between
cmdlets as dicts and are printed as PowerShell prints them (a table up to four properties, a list beyond).

Served: ``Get-ChildItem`` of ``Cert:\\<location>\\<store>`` and of the Key Vault extension's log folder,
``Where-Object``, ``Sort-Object``, ``Select-Object``, ``Get-Content``, ``Get-Service``, ``Remove-Item`` of a
certificate, ``Format-List``/``Format-Table``, ``Write-Output``. Any other command is what PowerShell says of a
command the node does not have (``CommandNotFoundException``, on the error stream); the statement produces nothing.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .guest import InstalledCert
    from .models import Instance

KV_LOG_ROOT = "C:\\WindowsAzure\\Logs\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows"
KV_SERVICE = "akvvm_service"  # the Key Vault extension's Windows service (key-vault-windows, troubleshooting)
KV_WINDOWS_TYPE = "KeyVaultForWindows"

Obj = dict[str, Any]


class _Stop(Exception):
    """A terminating error: the statement ends, its message goes to the error stream."""


@dataclass
class Run:
    """One script's effect: what it printed on each stream, and the certificates it removed."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def split_outside_quotes(text: str, separators: str) -> list[str]:
    parts, current, quote = [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in separators:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _tokens(text: str) -> list[str]:
    return [t[1:-1] if len(t) > 1 and t[0] == t[-1] and t[0] in "'\"" else t
            for t in re.findall(r"'[^']*'|\"[^\"]*\"|[^\s]+", text)]


def _when(value: dt.datetime) -> str:
    """en-US ``DateTime`` as PowerShell prints it: ``12/3/2026 11:04:05 AM``."""
    hour = value.hour % 12 or 12
    return f"{value.month}/{value.day}/{value.year} {hour}:{value.minute:02d}:{value.second:02d} {'AM' if value.hour < 12 else 'PM'}"


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return _when(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _certificate(cert: InstalledCert) -> Obj:
    facts = cert.issued.facts
    return {"_kind": "cert", "_store": cert.store, "Thumbprint": cert.thumbprint, "Subject": f"CN={facts.subject_cn}",
            "Issuer": f"CN={facts.issuer_cn}", "NotBefore": facts.not_before, "NotAfter": facts.not_after,
            "HasPrivateKey": cert.has_private_key, "FriendlyName": ""}


class PowerShell:
    def __init__(self, instance: Instance, now: dt.datetime, kv_log: Callable[[Instance], list[str]]) -> None:
        self.instance = instance
        self.now = now
        self.kv_log = kv_log
        self.run = Run()

    def execute(self, script: str) -> Run:
        for statement in split_outside_quotes(script, ";\n"):
            try:
                objects: list[Any] = []
                for index, stage in enumerate(split_outside_quotes(statement, "|")):
                    objects = self._cmdlet(stage, objects, first=index == 0)
                self.run.stdout.extend(self._format(objects))
            except _Stop as stop:
                self.run.stderr.append(str(stop))
        return self.run

    # -- cmdlets ----------------------------------------------------------------------------------------
    def _cmdlet(self, stage: str, piped: list[Any], first: bool) -> list[Any]:
        words = _tokens(stage)
        name, args = words[0].lower(), words[1:]
        handlers: dict[str, Callable[[list[str], list[Any]], list[Any]]] = {
            "get-childitem": self._children, "gci": self._children, "dir": self._children, "ls": self._children,
            "where-object": self._where, "where": self._where, "?": self._where,
            "sort-object": self._sort, "sort": self._sort, "select-object": self._select, "select": self._select,
            "get-content": self._content, "gc": self._content, "cat": self._content, "type": self._content,
            "get-service": self._service, "remove-item": self._remove, "del": self._remove, "rm": self._remove,
            "format-list": self._list, "fl": self._list, "format-table": self._table, "ft": self._table,
            "write-output": self._echo, "echo": self._echo, "write-host": self._echo,
        }
        handler = handlers.get(name)
        if handler is None:
            raise _Stop(f"{words[0]} : The term '{words[0]}' is not recognized as the name of a cmdlet, function, script "
                        "file, or operable program. Check the spelling of the name, or if a path was included, verify "
                        "that the path is correct and try again.\n    + CategoryInfo          : ObjectNotFound: "
                        f"({words[0]}:String) [], CommandNotFoundException")
        return handler(args, piped)

    @staticmethod
    def _options(args: list[str]) -> tuple[list[str], dict[str, str | None]]:
        positional, named, index = [], {}, 0
        while index < len(args):
            arg = args[index]
            if arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit():
                key = arg[1:].lower()
                takes_value = key in ("path", "filter", "first", "last", "tail", "property", "expandproperty", "name")
                named[key] = args[index + 1] if takes_value and index + 1 < len(args) else None
                index += 2 if takes_value else 1
            else:
                positional.append(arg)
                index += 1
        return positional, named

    def _store(self, path: str) -> tuple[str, str] | None:
        found = re.fullmatch(r"cert:\\+(LocalMachine|CurrentUser)\\+([^\\]+)(?:\\+([0-9A-Fa-f]{40}))?\\?", path, re.IGNORECASE)
        if not found:
            return None
        location = "LocalMachine" if found.group(1).lower() == "localmachine" else "CurrentUser"
        return f"{location}\\{found.group(2)}", (found.group(3) or "").upper()

    def _children(self, args: list[str], piped: list[Any]) -> list[Any]:
        positional, named = self._options(args)
        path = named.get("path") or (positional[0] if positional else "")
        store = self._store(path or "")
        if store:
            where, thumbprint = store
            return [_certificate(c) for c in self.instance.store
                    if (c.store or "").lower() == where.lower() and (not thumbprint or c.thumbprint == thumbprint)]
        if path.rstrip("\\").lower() == KV_LOG_ROOT.lower() or path.lower().startswith(KV_LOG_ROOT.lower() + "\\"):
            extension = next((e for e in self.instance.extensions.values() if e.type.endswith(KV_WINDOWS_TYPE)), None)
            if extension is not None:
                folder = f"{KV_LOG_ROOT}\\{extension.version}"
                lines = self.kv_log(self.instance)
                name = f"{KV_SERVICE}_{self.now:%Y%m%d}.log"
                log: Obj = {"_kind": "file", "Name": name, "FullName": f"{folder}\\{name}", "LastWriteTime": self.now,
                            "Length": sum(len(line) + 2 for line in lines), "_lines": lines}
                wanted = named.get("filter") or "*"
                if "recurse" in named:
                    return [log] if fnmatch.fnmatch(str(log["Name"]).lower(), wanted.lower()) else []
                return [{"_kind": "file", "Name": extension.version, "FullName": folder, "LastWriteTime": self.now, "Length": ""}]
        raise _Stop(f"Get-ChildItem : Cannot find path '{path}' because it does not exist.")

    @staticmethod
    def _property(obj: Any, name: str) -> Any:
        if not isinstance(obj, dict):
            return None
        return next((v for k, v in obj.items() if k.lower() == name.lower() and not k.startswith("_")), None)

    def _where(self, args: list[str], piped: list[Any]) -> list[Any]:
        text = " ".join(args).strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1].replace("$_.", "").strip()
        words = _tokens(text)
        if len(words) != 3 or not words[1].startswith("-"):
            raise _Stop(f"Where-Object : the twin's PowerShell does not interpret the filter '{text}'.")
        name, operator, value = words[0], words[1].lower(), words[2]

        def keep(obj: Any) -> bool:
            have = _text(self._property(obj, name)).lower()
            tests = {"-eq": have == value.lower(), "-ne": have != value.lower(),
                     "-like": fnmatch.fnmatchcase(have, value.lower()), "-notlike": not fnmatch.fnmatchcase(have, value.lower()),
                     "-match": re.search(value, have, re.IGNORECASE) is not None}
            return tests.get(operator, False)

        return [obj for obj in piped if keep(obj)]

    def _sort(self, args: list[str], piped: list[Any]) -> list[Any]:
        positional, named = self._options(args)
        key = named.get("property") or (positional[0] if positional else "")
        return sorted(piped, key=lambda o: (self._property(o, key) is None, self._property(o, key) or 0 if key else _text(o)),
                      reverse="descending" in named)

    def _select(self, args: list[str], piped: list[Any]) -> list[Any]:
        positional, named = self._options(args)
        objects = list(piped)
        if named.get("first"):
            objects = objects[: int(str(named["first"]))]
        if named.get("last"):
            objects = objects[-int(str(named["last"])):]
        if named.get("expandproperty"):
            return [self._property(o, str(named["expandproperty"])) for o in objects]
        names = [n.strip() for n in ",".join(positional + ([str(named["property"])] if named.get("property") else [])).split(",") if n.strip()]
        if not names:
            return objects
        return [{**{k: v for k, v in o.items() if k.startswith("_")}, "_selected": True,
                 **{n: self._property(o, n) for n in names}} for o in objects]

    def _content(self, args: list[str], piped: list[Any]) -> list[Any]:
        positional, named = self._options(args)
        lines = [line for obj in piped if isinstance(obj, dict) for line in obj.get("_lines", [])]
        if positional and not piped:
            found = self._children([positional[0], "-Recurse"], [])
            lines = [line for obj in found for line in obj.get("_lines", [])]
        if named.get("tail"):
            lines = lines[-int(str(named["tail"])):]
        return lines

    def _service(self, args: list[str], piped: list[Any]) -> list[Any]:
        positional, named = self._options(args)
        name = named.get("name") or (positional[0] if positional else "")
        extension = next((e for e in self.instance.extensions.values() if e.type.endswith(KV_WINDOWS_TYPE)), None)
        if name.lower() != KV_SERVICE or extension is None:
            raise _Stop(f"Get-Service : Cannot find any service with service name '{name}'.")
        status = "Running" if extension.status == "succeeded" else "Stopped"
        return [{"_kind": "service", "Status": status, "Name": KV_SERVICE, "DisplayName": KV_SERVICE}]

    def _remove(self, args: list[str], piped: list[Any]) -> list[Any]:
        positional, named = self._options(args)
        path = named.get("path") or (positional[0] if positional else "")
        store = self._store(path or "")
        if not store or not store[1]:
            raise _Stop(f"Remove-Item : the twin's PowerShell removes only certificates (Cert:\\<location>\\<store>\\<thumbprint>), not '{path}'.")
        where, thumbprint = store
        gone = [c for c in self.instance.store if (c.store or "").lower() == where.lower() and c.thumbprint == thumbprint]
        if not gone:
            raise _Stop(f"Remove-Item : Cannot find path '{path}' because it does not exist.")
        for cert in gone:
            self.instance.store.remove(cert)
            self.run.removed.append(cert.thumbprint)
        return []

    def _list(self, args: list[str], piped: list[Any]) -> list[Any]:
        return [{**o, "_format": "list"} if isinstance(o, dict) else o for o in piped]

    def _table(self, args: list[str], piped: list[Any]) -> list[Any]:
        return [{**o, "_format": "table"} if isinstance(o, dict) else o for o in piped]

    def _echo(self, args: list[str], piped: list[Any]) -> list[Any]:
        return [" ".join(args)]

    # -- Out-Default ------------------------------------------------------------------------------------
    def _format(self, objects: list[Any]) -> list[str]:
        lines: list[str] = []
        rows: list[Obj] = []
        for obj in objects + [None]:
            if isinstance(obj, dict):
                rows.append(obj)
                continue
            if rows:
                lines.extend(self._render(rows))
                rows = []
            if obj is not None:
                lines.append(_text(obj))
        return lines

    def _render(self, rows: list[Obj]) -> list[str]:
        first = rows[0]
        columns = [k for k in first if not k.startswith("_")]
        out: list[str] = [""]
        if not first.get("_selected"):  # the default views of certificates and files
            if first.get("_kind") == "cert":
                columns = ["Thumbprint", "Subject"]
                out += [f"   PSParentPath: Microsoft.PowerShell.Security\\Certificate::{first['_store']}", ""]
            elif first.get("_kind") == "file":
                columns = ["LastWriteTime", "Length", "Name"]
        if first.get("_format") == "list" or (len(columns) > 4 and first.get("_format") != "table"):
            width = max(len(c) for c in columns)
            for row in rows:
                out += [f"{c.ljust(width)} : {_text(row.get(c))}" for c in columns] + [""]
            return out + [""]
        widths = [max([len(c)] + [len(_text(r.get(c))) for r in rows]) for c in columns]
        out.append(" ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        out.append(" ".join(("-" * len(c)).ljust(w) for c, w in zip(columns, widths)).rstrip())
        out += [" ".join(_text(r.get(c)).ljust(w) for c, w in zip(columns, widths)).rstrip() for r in rows]
        return out + ["", ""]
