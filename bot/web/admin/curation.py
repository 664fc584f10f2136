"""The console's suggestions inbox and the history of what staff changed.

``GET /admin/suggestions`` lists the open suggestions of the date range
(:func:`bot.analysis.suggestions.suggestions`). Accepting one
(``POST /admin/suggestions/accept``) appends the wording to the FAQ's
``alternates`` in its YAML file (:class:`bot.curate.edit.Draft`: comments,
order and layout kept, the whole bank validated first, a file changed
meanwhile never overwritten), publishes the bank through the hot reload
(:func:`bot.web.reload.reload_bank`) and records the decision; rejecting one
records it so that it is not proposed again. ``GET /admin/history`` lists the
recorded decisions, newest first, each with what it changed in the entry
(:func:`changes`: list items added and removed, texts before and after).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue

from bot.analysis.suggestions import suggestions as open_suggestions
from bot.bank import ENTRY_KEYS
from bot.curate.edit import Draft, EditConflict, EditError
from bot.curate.explain import FIELD_NAMES
from bot.errors import BankError
from bot.web.admin.filters import current_filters, when
from bot.web.errors import WebError
from bot.web.reload import reload_bank
from bot.web.service import get_service

__all__ = ["accept", "changes", "history", "reject", "suggestions", "who"]

MSG_BAD_SUGGESTION = "这条建议已无法处理（条目不存在或问法为空），请刷新页面后再试。"
MSG_CONFLICT = "题库文件在您打开页面后被修改过，本次未写入。请刷新页面后再试。"
ACTION_NAMES = {"accept": "采纳建议", "reject": "不采纳", "edit": "修改条目"}
_HISTORY_SHOWN = 200
_LIST_FIELDS = ("alternates", "keywords", "related", "basis", "links")


def suggestions(**notice: Any) -> str:
    """The open suggestions of the filtered date range."""
    f = current_filters()
    service = get_service()
    shown = int(current_app.config["ADMIN_CLUSTERS_SHOWN"])
    found = open_suggestions(
        service.querylog, service.bot, f.since, f.until, settings=current_app.config,
        nearest_for=shown,
    )  # fmt: skip
    return render_template(
        "admin/suggestions.html",
        active="suggestions",
        f=f,
        suggestions=found[:shown],
        total=len(found),
        **notice,
    )


def _picked() -> tuple[str, str]:
    faq_id = request.form.get("faq_id", "")
    wording = " ".join(request.form.get("wording", "").split())
    limit = int(current_app.config["MAX_QUESTION_CHARS"])
    if faq_id not in get_service().bot.bank.by_id or not wording or len(wording) > limit:
        raise WebError(400, "bad_suggestion", MSG_BAD_SUGGESTION)
    return faq_id, wording


def who() -> str:
    """Who made a change: the console, and the address the request came from."""
    return f"分析后台（{request.remote_addr or '未知地址'}）"


def accept() -> ResponseReturnValue:
    """Add the wording as an alternate, publish the bank, record the decision."""
    faq_id, wording = _picked()
    draft = Draft(current_app.config["FAQ_DIR"])
    try:
        before = draft.fields(faq_id).get("alternates") or []
        draft.add_alternate(faq_id, wording)
        names = draft.write()
    except EditConflict:
        return suggestions(error=MSG_CONFLICT), 409
    except BankError as e:
        return suggestions(
            error="题库检查未通过，本次未写入：", errors=[str(i) for i in e.issues]
        ), 422
    except EditError as e:
        return suggestions(error=f"本次未写入：{e}"), 422
    result = reload_bank(current_app)
    after = draft.fields(faq_id).get("alternates") or []
    get_service().querylog.record_curation(
        "accept", faq_id, who=who(), wording=wording, file=names[0] if names else None,
        before={"alternates": before}, after={"alternates": after},
    )  # fmt: skip
    current_app.logger.info("admin: alternate added to %s, bank %s", faq_id, result.version[:12])
    return suggestions(accepted=(faq_id, wording), result=result)


def reject() -> ResponseReturnValue:
    """Remember that the wording is not to be proposed for the FAQ again."""
    faq_id, wording = _picked()
    get_service().querylog.record_curation("reject", faq_id, who=who(), wording=wording)
    return suggestions(rejected=(faq_id, wording))


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What a recorded change did, field by field in the entry's order: for a list the
    items added and removed, for a text the text before and after (None: not set)."""
    before, after = before or {}, after or {}
    out = []
    for key in sorted(set(before) | set(after), key=_rank):
        old, new = before.get(key), after.get(key)
        if old == new or key == "id":
            continue
        item: dict[str, Any] = {"key": key, "name": FIELD_NAMES.get(key, key)}
        if key in _LIST_FIELDS:
            old_items, new_items = [_shown(v) for v in old or []], [_shown(v) for v in new or []]
            item["added"] = [v for v in new_items if v not in old_items]
            item["removed"] = [v for v in old_items if v not in new_items]
        else:
            item["old"], item["new"] = old, new
        out.append(item)
    return out


def _rank(key: str) -> int:
    return ENTRY_KEYS.index(key) if key in ENTRY_KEYS else len(ENTRY_KEYS)


def _shown(value: Any) -> str:
    if isinstance(value, dict):  # a link
        return "：".join(str(v) for v in value.values())
    return str(value)


def history() -> str:
    """The recorded decisions, newest first, each with what it changed."""
    rows = get_service().querylog.curation(limit=_HISTORY_SHOWN)
    for row in rows:
        row["changes"] = changes(row["before"], row["after"])
        row["created"] = row["action"] == "edit" and row["before"] is None
    return render_template(
        "admin/history.html",
        active="history",
        rows=rows,
        actions=ACTION_NAMES,
        when=when,
    )
