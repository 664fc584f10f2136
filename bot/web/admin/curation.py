"""The console's suggestions inbox and the history of what staff changed.

``GET /admin/suggestions`` lists the open suggestions of the date range
(:func:`bot.analysis.suggestions.suggestions`). Accepting one
(``POST /admin/suggestions/accept``) appends the wording to the FAQ's
``alternates`` in its YAML file (:class:`bot.curate.edit.Draft`: comments,
order and layout kept, the whole bank validated first, a file changed
meanwhile never overwritten), publishes the bank through the hot reload
(:func:`bot.web.reload.reload_bank`) and records the decision; rejecting one
records it so that it is not proposed again. ``GET /admin/history`` lists the
recorded decisions, newest first, with the entry's alternates before and after.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue

from bot.analysis.suggestions import suggestions as open_suggestions
from bot.curate.edit import Draft, EditConflict, EditError
from bot.errors import BankError
from bot.web.admin.filters import current_filters, when
from bot.web.errors import WebError
from bot.web.reload import reload_bank
from bot.web.service import get_service

__all__ = ["accept", "history", "reject", "suggestions"]

MSG_BAD_SUGGESTION = "这条建议已无法处理（条目不存在或问法为空），请刷新页面后再试。"
MSG_CONFLICT = "题库文件在您打开页面后被修改过，本次未写入。请刷新页面后再试。"
ACTION_NAMES = {"accept": "采纳建议", "reject": "不采纳", "edit": "修改条目"}
_HISTORY_SHOWN = 200


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


def _who() -> str:
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
        "accept", faq_id, who=_who(), wording=wording, file=names[0] if names else None,
        before={"alternates": before}, after={"alternates": after},
    )  # fmt: skip
    current_app.logger.info("admin: alternate added to %s, bank %s", faq_id, result.version[:12])
    return suggestions(accepted=(faq_id, wording), result=result)


def reject() -> ResponseReturnValue:
    """Remember that the wording is not to be proposed for the FAQ again."""
    faq_id, wording = _picked()
    get_service().querylog.record_curation("reject", faq_id, who=_who(), wording=wording)
    return suggestions(rejected=(faq_id, wording))


def history() -> str:
    """The recorded decisions, newest first, each with the alternates it added."""
    rows = get_service().querylog.curation(limit=_HISTORY_SHOWN)
    for row in rows:
        before = (row["before"] or {}).get("alternates") or []
        after = (row["after"] or {}).get("alternates") or []
        row["added"] = [a for a in after if a not in before]
        row["removed"] = [b for b in before if b not in after]
    return render_template(
        "admin/history.html",
        active="history",
        rows=rows,
        actions=ACTION_NAMES,
        when=when,
    )
