"""The console's FAQ editor: the list of entries, one entry's form, and a new entry's form.

``GET /admin/faqs`` lists the entries served now. ``/admin/faq/<id>`` shows an
entry's form (标准问, 相似问法 one per line, 答案, 分类, 关键词, 相关问题, 依据,
复核日期); ``/admin/faqs/new`` the same for a new entry in a chosen file. A
form posts ``do=preview`` (the reply the bot would give with the edited entry,
placeholders of ``site.yaml`` filled in by :func:`bot.match.engine.faq_card`,
nothing written) or ``do=save``: the change goes through
:class:`bot.curate.edit.Draft` (the whole bank validated, the YAML file written
with its comments and order kept), the bank is published through the hot
reload and the change recorded (who, when, entry, before and after) for
``/admin/history``. Problems are shown in Chinese naming the field
(:mod:`bot.curate.explain`).

An entry's form carries the SHA-256 of its file, and the entry's fields, as they
were when the form was opened; a save after the file changed is refused (409)
with who changed it and the entry as it is now. The form then holds the
curator's changes on top of the entry as it is now (a field only the other
person changed takes their text; one both changed keeps the curator's and is
marked) and the new digest: saving again is a deliberate choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.curate.edit import Draft, EditConflict, EditError, EntryChange
from bot.curate.explain import FIELD_NAMES, Explained, explain, explain_edit
from bot.errors import BankError
from bot.match.engine import faq_card
from bot.web.admin.curation import who
from bot.web.admin.filters import when
from bot.web.errors import WebError
from bot.web.reload import reload_bank
from bot.web.service import get_service

__all__ = ["FORM_FIELDS", "MSG_CONFLICT", "edit_faq", "faq_list", "new_faq"]

#: The entry fields on the form, in its order; the lists are one item per line.
FORM_FIELDS = ("question", "alternates", "answer", "category", "keywords", "related", "basis",
               "reviewed")  # fmt: skip
_LISTS = ("alternates", "keywords", "related", "basis")
_SHOWN_SCHEMES = ("", "http", "https", "tel")
MSG_CONFLICT = (
    "没有保存：您打开本页之后，{file} 已被修改（{by}）。为免覆盖别人的修改，本次什么都没有写入。"
    "您改动的内容仍在下面的表单里；请对照“现在文件中的这一条”，确认无误后再点“保存”。"
)
MSG_TAKEN = "您没有改动、而别人改过的项已换成文件中现在的内容："
MSG_BOTH_CHANGED = (
    "【{name}】您和别人都改了这一项：表单中是您的版本，请对照上面文件中现在的内容再决定。"
)
MSG_CHANGED_ON_DISK = "有人直接改了服务器上的文件"
MSG_NOTHING_CHANGED = "表单与文件中的内容相同，没有需要保存的修改。"
MSG_CHECK_FAILED = "题库检查未通过，本次没有写入。请按下面的提示修改："
MSG_NO_SUCH_ENTRY = "题库里没有这个条目（可能已被删除或改名）。"


def _faq_dir() -> str:
    return str(current_app.config["FAQ_DIR"])


def faq_list(**notice: Any) -> str:
    """Every entry served now, with its file, linking to its form (and the workbook's forms)."""
    bot = get_service().bot
    rows = [
        {"id": f.id, "question": f.question, "category": f.category,
         "file": Path(f.path).name, "reviewed": f.reviewed}
        for f in bot.bank.faqs
    ]  # fmt: skip
    return render_template(
        "admin/faqs.html", active="faqs", rows=rows, files=Draft(_faq_dir()).faq_files(), **notice
    )


# --- the form ----------------------------------------------------------------------


def _form_text(fields: dict[str, Any]) -> dict[str, str]:
    """An entry's fields as the form shows them."""
    out = {}
    for key in FORM_FIELDS:
        value = fields.get(key)
        if key in _LISTS:
            out[key] = "\n".join(str(v) for v in value or ())
        else:
            out[key] = "" if value is None else str(value).strip()
    return out


def _posted(prefix: str = "") -> dict[str, str]:
    """The form's text (``prefix="was-"``: as it was when the form was opened)."""
    return {k: request.form.get(prefix + k, "").replace("\r\n", "\n") for k in FORM_FIELDS}


def _merged(mine: dict[str, str], was: dict[str, str], theirs: dict[str, str]) -> dict[str, Any]:
    """After a conflict: the curator's changes on top of the entry as it is now.

    A field the curator did not change takes the other change (``taken``); one both
    changed keeps the curator's text (``both``), for them to decide.
    """
    m, w, t = _fields(mine), _fields(was), _fields(theirs)
    form, taken, both = {}, [], []
    for key in FORM_FIELDS:
        if m[key] == w[key]:
            form[key] = theirs[key]
            if t[key] != w[key]:
                taken.append(key)
        else:
            form[key] = mine[key]
            if t[key] not in (w[key], m[key]):
                both.append(key)
    return {"form": form, "taken": taken, "both": both}


def _fields(text: dict[str, str]) -> dict[str, Any]:
    """The form's text as entry fields: lists split into lines, an empty field removed."""
    out: dict[str, Any] = {}
    for key in FORM_FIELDS:
        value = text[key].strip()
        if key in _LISTS:
            out[key] = [line.strip() for line in value.split("\n") if line.strip()]
        elif key == "answer":
            out[key] = "\n".join(line.rstrip() for line in value.split("\n"))
        else:
            out[key] = " ".join(value.split()) or None
    return out


def _problems(exc: Exception, entry_id: str) -> list[Explained]:
    if isinstance(exc, BankError):
        found = [explain(i) for i in exc.issues]
        # A problem of another entry or file is listed, but not put under a field.
        return [
            e if i.entry == entry_id else Explained(None, e.text)
            for i, e in zip(exc.issues, found, strict=True)
        ]
    return [explain_edit(str(exc))]


def _update(draft: Draft, entry_id: str, fields: dict[str, Any]) -> list[Explained]:
    """Apply the form field by field: every refused field is listed, not just the first."""
    refused = []
    for key, value in fields.items():
        try:
            draft.update_entry(entry_id, {key: value})
        except EditError as e:
            refused.append(explain_edit(str(e)))
    return refused


def _checked(draft: Draft, entry_id: str) -> list[Explained]:
    """The bank's problems with the fields that could be applied."""
    try:
        draft.check()
    except BankError as e:
        return _problems(e, entry_id)
    return []


def _preview(draft: Draft, entry_id: str) -> dict[str, Any]:
    """The answer the bot would give with the draft's bank (BankError if it is not valid)."""
    bank = draft.check()
    faq = bank.by_id[entry_id]
    card = faq_card(faq, bank.site)
    for link in card["links"]:
        # As the widget does (safeHref in widget.js): other links are not shown.
        link["shown"] = urlsplit(link["url"].strip()).scheme.lower() in _SHOWN_SCHEMES
    card["related"] = [
        {"id": r, "question": bank.by_id[r].question} for r in faq.related if r in bank.by_id
    ]
    return card


def _last_change(file: str) -> str:
    """Who changed ``file`` last in the console, or that it was changed on disk."""
    for row in get_service().querylog.curation(limit=50, actions=("accept", "edit")):
        if row["file"] == file:
            at = when(row["created_at"], seconds=True)
            return f"{at} {row['who']} 修改了条目 {row['faq_id']}"
    return MSG_CHANGED_ON_DISK


def _page(*, status: int = 200, **context: Any) -> ResponseReturnValue:
    context.setdefault("problems", [])
    by_field: dict[str, list[str]] = {}
    for p in context["problems"]:
        if p.field:
            by_field.setdefault(p.field, []).append(p.text)
    return render_template(
        "admin/faq_edit.html", active="faqs", names=FIELD_NAMES, by_field=by_field,
        msg_taken=MSG_TAKEN, **context,
    ), status  # fmt: skip


def edit_faq(faq_id: str) -> ResponseReturnValue:
    """An entry's form; posted: preview it or save it."""
    draft = Draft(_faq_dir())
    file = draft.file_of(faq_id)
    if file is None:
        raise WebError(404, "no_such_entry", MSG_NO_SUCH_ENTRY)
    try:
        current = draft.fields(faq_id)
    except EditError as e:
        return _page(
            status=422, entry_id=faq_id, file=file, form=None, problems=[explain_edit(str(e))]
        )
    page: dict[str, Any] = {"entry_id": faq_id, "file": file}
    if request.method == "GET":
        saved = request.args.get("saved")
        now = _form_text(current)
        return _page(**page, form=now, was=now, digest=draft.digest(file), saved=saved,
                     created=request.args.get("created") == "1")  # fmt: skip
    text = _posted()
    opened = request.form.get("digest", "")
    page.update(form=text, was=_posted("was-"), digest=opened)
    try:
        refused = _update(draft, faq_id, _fields(text))
        if refused:
            return _page(status=422, **page, problems=refused + _checked(draft, faq_id),
                         failed=MSG_CHECK_FAILED)  # fmt: skip
        if request.form.get("do") != "save":
            return _page(**page, preview=_preview(draft, faq_id))
        if not draft.changes:
            return _page(**page, notice=MSG_NOTHING_CHANGED)
        draft.write(expected={file: opened})
    except EditConflict:
        theirs = _form_text(current)
        merge = _merged(text, page["was"], theirs)
        both = [Explained(k, MSG_BOTH_CHANGED.format(name=FIELD_NAMES[k])) for k in merge["both"]]
        page.update(form=merge["form"], was=theirs, digest=draft.digest(file), other=theirs)
        said = MSG_CONFLICT.format(file=file, by=_last_change(file))
        return _page(status=409, **page, conflict=said, taken=merge["taken"], problems=both)
    except (BankError, EditError) as e:
        return _page(status=422, **page, problems=_problems(e, faq_id), failed=MSG_CHECK_FAILED)
    return _published(draft, faq_id)


def new_faq() -> ResponseReturnValue:
    """The form of a new entry, in a file chosen from the bank's FAQ files."""
    draft = Draft(_faq_dir())
    files = draft.faq_files()
    page: dict[str, Any] = {"entry_id": None, "files": files}
    if request.method == "GET":
        chosen = request.args.get("file", "")
        empty = dict.fromkeys(FORM_FIELDS, "")
        return _page(**page, form=empty, new_id="", file=chosen if chosen in files else "")
    text = _posted()
    new_id, file = request.form.get("id", "").strip(), request.form.get("file", "")
    page.update(form=text, new_id=new_id, file=file)
    try:
        if file not in files:
            raise EditError(f"'{file}' is not a FAQ file name (like street-order.yaml)")
        fields = {k: v for k, v in _fields(text).items() if v not in (None, "", [])}
        draft.add_entry(file, {"id": new_id, **fields})
        if request.form.get("do") != "save":
            return _page(**page, preview=_preview(draft, new_id))
        draft.write()
    except (BankError, EditError) as e:
        return _page(status=422, **page, problems=_problems(e, new_id), failed=MSG_CHECK_FAILED)
    return _published(draft, new_id, created=True)


def _published(draft: Draft, entry_id: str, *, created: bool = False) -> ResponseReturnValue:
    """Reload the bank, record the change, and show the entry's form again."""
    result = reload_bank(current_app)
    log = get_service().querylog
    first: dict[tuple[str, str], EntryChange] = {}
    last: dict[tuple[str, str], EntryChange] = {}
    for change in draft.changes:  # one per field applied: one record per entry
        first.setdefault((change.file, change.entry), change)
        last[(change.file, change.entry)] = change
    for key, change in first.items():
        log.record_curation(
            "edit", change.entry, who=who(), file=change.file, before=change.before,
            after=last[key].after,
        )  # fmt: skip
    current_app.logger.info("admin: entry %s saved, bank %s", entry_id, result.version[:12])
    if not result.ok:
        problems = [Explained(None, e) for e in result.errors]
        return _page(status=500, entry_id=entry_id, file=draft.file_of(entry_id), form=None,
                     problems=problems, failed="已写入文件，但重新加载题库失败：")  # fmt: skip
    target = url_for("admin.faq_edit", faq_id=entry_id, saved=result.version[:12],
                     created="1" if created else None)  # fmt: skip
    return redirect(target, code=303)
