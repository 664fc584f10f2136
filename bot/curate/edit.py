"""Round-trip edits of ``faq/*.yaml``: comments, key order and formatting are kept.

A :class:`Draft` reads the files it needs once (with ruamel.yaml, which keeps
everything a curator wrote), changes entries in memory, validates the WHOLE
resulting bank through :func:`bot.bank.load_bank` (``texts=``) and only then
writes the changed files, each atomically (:func:`bot.files.atomic_write`).
A file that changed on disk after the draft read it is never overwritten:
:meth:`Draft.write` holds a lock on each file, compares its SHA-256 with the
one read at the start (or with the one the caller saw, ``expected=``) and
raises :class:`EditConflict` before writing anything.

Entry fields use the bank's keys: ``question``, ``answer``, ``category`` (text),
``alternates``, ``keywords``, ``related``, ``basis`` (lists of text),
``reviewed`` (a date, ``YYYY-MM-DD`` text, or None to remove it) and ``links``
(a list of ``{"title": ..., "url": ...}``). ``None`` or an empty list removes
an optional key.

Exceptions (all :class:`bot.errors.XiaochengError`)::

    EditError        the edit names an entry or file that does not exist, or a bad field
     └── EditConflict a file changed on disk since it was read; nothing was written

A bank that would be invalid raises :class:`bot.errors.BankError` (nothing written).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from ..bank import ENTRY_KEYS, EXTRA_FILES, Bank, load_bank, shown_path
from ..errors import XiaochengError
from ..files import atomic_write

__all__ = ["Draft", "EditConflict", "EditError", "EntryChange", "file_digest"]

#: Fields written as flow lists ``[a, b]``, as the shipped bank does.
_FLOW_LISTS = ("keywords", "related", "basis")
_LISTS = ("alternates", *_FLOW_LISTS)
_TEXTS = ("question", "answer", "category")
#: Where a new key goes among the keys of an entry.
_ORDER = ENTRY_KEYS
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class EditError(XiaochengError):
    """The edit itself is wrong: an unknown entry or file, or a field that cannot be written."""


class EditConflict(EditError):
    """A file changed on disk after it was read; nothing was written."""


def file_digest(data: bytes) -> str:
    """The SHA-256 (hex) by which a file's version is recognised."""
    return hashlib.sha256(data).hexdigest()


_DASH = re.compile(r"^( *)-( +)\S", re.MULTILINE)


def _yaml(text: str = "") -> YAML:
    """A round-trip YAML that writes lists indented the way ``text`` indents them."""
    y = YAML()  # round-trip mode
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line
    m = _DASH.search(text)
    offset, after = (len(m.group(1)), len(m.group(2))) if m else (2, 1)
    y.indent(mapping=offset or 2, sequence=offset + 1 + after, offset=offset)
    return y


@dataclass
class _Doc:
    name: str
    original: bytes
    digest: str
    data: Any
    changed: bool = False
    added: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EntryChange:
    """One changed entry: its file, and its fields before (None if new) and after."""

    file: str
    entry: str
    before: dict[str, Any] | None
    after: dict[str, Any]


class Draft:
    """Pending edits of one bank folder; nothing touches disk before :meth:`write`."""

    def __init__(self, faq_dir: str | os.PathLike[str]) -> None:
        self.root = Path(faq_dir)
        self._docs: dict[str, _Doc] = {}
        self.changes: list[EntryChange] = []
        self._where: dict[str, str] | None = None

    # --- reading ---------------------------------------------------------------

    def faq_files(self) -> list[str]:
        """Names of the FAQ files in the folder (not site.yaml and the other extras)."""
        return sorted(
            p.name for p in self.root.glob("*.yaml") if p.name not in EXTRA_FILES
        ) + sorted(n for n, d in self._docs.items() if not (self.root / n).exists())

    def file_of(self, entry_id: str) -> str | None:
        """The file that defines ``entry_id`` (a fast scan, no validation), or None."""
        if self._where is None:
            where: dict[str, str] = {}
            for name in self.faq_files():
                try:
                    data = yaml.load(self._text(name), Loader=_SafeLoader)  # noqa: S506
                except yaml.YAMLError:
                    continue
                entries = data.get("faqs") if isinstance(data, dict) else None
                for item in entries if isinstance(entries, list) else []:
                    if isinstance(item, dict) and item.get("id") is not None:
                        where.setdefault(str(item["id"]), name)
            self._where = where
        return self._where.get(entry_id)

    def digest(self, name: str) -> str:
        """The SHA-256 of the file as this draft read it."""
        return self._doc(name).digest

    def _text(self, name: str) -> str:
        if name in self._docs:
            return self._docs[name].original.decode("utf-8")
        return (self.root / name).read_text(encoding="utf-8")

    def _doc(self, name: str) -> _Doc:
        doc = self._docs.get(name)
        if doc is None:
            path = self.root / name
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raise EditError(f"{shown_path(path)}: no such FAQ file") from None
            try:
                text = raw.decode("utf-8")
                data = _yaml(text).load(text)
            except (YAMLError, UnicodeDecodeError) as exc:
                raise EditError(
                    f"{shown_path(path)}: cannot be edited until it parses (python -m bot lint)"
                ) from exc
            doc = self._docs[name] = _Doc(name, raw, file_digest(raw), data)
        return doc

    def _entry(self, entry_id: str) -> tuple[_Doc, CommentedMap]:
        name = self.file_of(entry_id)
        if name is None:
            raise EditError(f"entry '{entry_id}' does not exist")
        doc = self._doc(name)
        for item in doc.data.get("faqs") or []:
            if isinstance(item, CommentedMap) and str(item.get("id")) == entry_id:
                return doc, item
        raise EditError(f"entry '{entry_id}' does not exist")

    def fields(self, entry_id: str) -> dict[str, Any]:
        """The entry's fields as written (plain Python values; ``reviewed`` as text)."""
        return _plain(self._entry(entry_id)[1])

    # --- editing ----------------------------------------------------------------

    def add_alternate(self, entry_id: str, text: str) -> None:
        """Append one alternate wording to an entry (the only line added to its file)."""
        doc, entry = self._entry(entry_id)
        text = text.strip()
        if not text:
            raise EditError(f"entry '{entry_id}': an alternate cannot be empty")
        before = _plain(entry)
        seq = entry.get("alternates")
        if isinstance(seq, CommentedSeq):
            seq.append(text)
        else:
            _set(entry, "alternates", [text])
        self._done(doc, entry_id, before, entry)

    def update_entry(self, entry_id: str, fields: Mapping[str, Any]) -> None:
        """Replace the given fields of an entry; other fields, comments and layout stay."""
        doc, entry = self._entry(entry_id)
        before = _plain(entry)
        for key, value in fields.items():
            if key == "id":
                if value != entry_id:
                    raise EditError(f"entry '{entry_id}': the id cannot be changed")
                continue
            _set(entry, key, value)
        self._done(doc, entry_id, before, entry)

    def add_entry(self, file_name: str, fields: Mapping[str, Any]) -> None:
        """Append a new entry at the end of ``file_name``'s list (the file may be new)."""
        entry_id = str(fields.get("id") or "").strip()
        if not entry_id:
            raise EditError("a new entry needs an 'id'")
        if self.file_of(entry_id) is not None:
            raise EditError(f"entry '{entry_id}' already exists in {self.file_of(entry_id)}")
        if not file_name.endswith(".yaml") or "/" in file_name or file_name in EXTRA_FILES:
            raise EditError(f"'{file_name}' is not a FAQ file name (like street-order.yaml)")
        if (self.root / file_name).exists() or file_name in self._docs:
            doc = self._doc(file_name)
        else:
            data = CommentedMap()
            data["faqs"] = CommentedSeq()
            doc = self._docs[file_name] = _Doc(file_name, b"", file_digest(b""), data)
        entry = CommentedMap()
        entry["id"] = entry_id
        for key in _ORDER:
            if key != "id" and key in fields:
                _set(entry, key, fields[key])
        unknown = sorted(set(fields) - set(_ORDER))
        if unknown:
            raise EditError(f"entry '{entry_id}': unknown field '{unknown[0]}'")
        doc.data.setdefault("faqs", CommentedSeq()).append(entry)
        doc.added.append(entry_id)
        if self._where is not None:
            self._where[entry_id] = file_name
        self._done(doc, entry_id, None, entry)

    def _done(self, doc: _Doc, entry_id: str, before: dict[str, Any] | None, entry: Any) -> None:
        after = _plain(entry)
        if after != before:
            doc.changed = True
            self.changes.append(EntryChange(doc.name, entry_id, before, after))

    # --- checking and writing ----------------------------------------------------

    def texts(self) -> dict[str, str]:
        """The new text of every changed file."""
        return {name: _dump(doc) for name, doc in self._docs.items() if doc.changed}

    def check(self) -> Bank:
        """The whole bank as it would be after writing; BankError if anything is wrong."""
        return load_bank(self.root, texts=self.texts())

    def write(self, *, expected: Mapping[str, str] | None = None) -> list[str]:
        """Validate, then write every changed file atomically; the names written.

        ``expected`` maps file names to the digest the caller saw (e.g. when an
        editing form was opened); by default the digest this draft read.
        Raises BankError (bank invalid) or EditConflict (a file changed meanwhile)
        and then writes nothing.
        """
        texts = self.texts()
        if not texts:
            return []
        load_bank(self.root, texts=texts)
        names = sorted(texts)
        with contextlib.ExitStack() as stack:
            for name in names:
                want = (expected or {}).get(name, self._docs[name].digest)
                new = not self._docs[name].original
                stack.enter_context(_locked_at(self.root / name, want, new=new))
            for name in names:
                atomic_write(self.root / name, texts[name].encode("utf-8"))
        for name in names:
            raw = texts[name].encode("utf-8")
            doc = self._docs[name]
            doc.original, doc.digest, doc.changed = raw, file_digest(raw), False
            doc.added.clear()
        return names


def _dump(doc: _Doc) -> str:
    out = io.StringIO()
    _yaml(doc.original.decode("utf-8")).dump(doc.data, out)
    lines = out.getvalue().split("\n")
    # A new entry gets the blank line that separates entries, unless it is the first.
    for entry_id in doc.added:
        start = re.compile(rf"^ *- +id: {re.escape(entry_id)}$")
        i = next(n for n, line in enumerate(lines) if start.match(line))
        if i > 0 and lines[i - 1].strip() and not lines[i - 1].startswith("faqs:"):
            lines.insert(i, "")
    return "\n".join(lines)


def _set(entry: CommentedMap, key: str, value: Any) -> None:
    """Set (or, for None/empty, remove) one field, in place where a list already exists."""
    if key not in _ORDER or key == "id":
        raise EditError(f"entry '{entry.get('id')}': unknown field '{key}'")
    empty = value is None or (isinstance(value, list | tuple) and not value) or value == ""
    if empty:
        if key in ("question", "answer"):
            raise EditError(f"entry '{entry.get('id')}': '{key}' cannot be empty")
        entry.pop(key, None)
        return
    if key in _TEXTS:
        text = str(value).strip()
        if key == "answer":
            new: Any = LiteralScalarString(text + "\n")
        else:
            new = text
        if _plain_value(entry.get(key)) == text:
            return
    elif key in _LISTS:
        if isinstance(value, str):
            raise EditError(f"entry '{entry.get('id')}': '{key}' must be a list")
        items = [str(v).strip() for v in value]
        old = entry.get(key)
        if isinstance(old, CommentedSeq):
            if [str(v) for v in old] != items:
                if [str(v) for v in old] == items[: len(old)]:
                    old.extend(items[len(old) :])
                else:
                    del old[:]
                    old.extend(items)
            return
        new = CommentedSeq(items)
        if key in _FLOW_LISTS:
            new.fa.set_flow_style()
    elif key == "reviewed":
        try:
            new = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise EditError(
                f"entry '{entry.get('id')}': 'reviewed' is not a date YYYY-MM-DD: '{value}'"
            ) from None
        if _plain_value(entry.get(key)) == new.isoformat():
            return
    else:  # links
        new = CommentedSeq()
        for link in value:
            if not isinstance(link, Mapping) or set(link) != {"title", "url"}:
                raise EditError(
                    f"entry '{entry.get('id')}': each link needs exactly 'title' and 'url'"
                )
            url = str(link["url"])
            # Quoted as the shipped bank quotes them: a bare {placeholder} is YAML flow syntax.
            shown_url = DoubleQuotedScalarString(url) if url.startswith("{") else url
            item = CommentedMap([("title", str(link["title"])), ("url", shown_url)])
            item.fa.set_flow_style()
            new.append(item)
        if _plain_value(entry.get(key)) == _plain_value(new):
            return
    if key in entry:
        entry[key] = new
        return
    position = len(entry)
    rank = _ORDER.index(key)
    for i, existing in enumerate(entry):
        if existing in _ORDER and _ORDER.index(existing) > rank:
            position = i
            break
    entry.insert(position, key, new)


def _plain_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip()


def _plain(entry: Any) -> dict[str, Any]:
    return {str(k): _plain_value(v) for k, v in entry.items()}


@contextlib.contextmanager
def _locked_at(path: Path, digest: str, *, new: bool) -> Iterator[None]:
    """Hold an exclusive lock on the file now at ``path`` and check it is still ``digest``."""
    shown = shown_path(path)
    changed = EditConflict(
        f"{shown}: changed on disk since it was read; nothing was written "
        "(open it again and redo the change)"
    )
    if new:
        if path.exists():
            raise changed
        yield
        return
    while True:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise changed from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if os.fstat(fh.fileno()).st_ino != os.stat(path).st_ino:
                fh.close()  # replaced while we waited: lock the new one
                continue
            if file_digest(fh.read()) != digest:
                raise changed
            yield
            return
        finally:
            fh.close()
