"""Internal traffic through the real app: questions from INTERNAL_NETWORKS or with the
INTERNAL_HEADER are answered, logged marked internal, and left out of the console's
charts, lists, clusters, suggestions and exports and of the report (bot/web/traffic.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_admin import index_path, logged_in, make_app  # noqa: F401 - fixtures

from bot.analysis.spikes import spikes
from bot.config import ConfigError
from bot.web import create_app
from bot.web.service import get_service

PROBE_HEADER = "X-Xiaocheng-Probe"
SETTINGS = {"INTERNAL_NETWORKS": ["10.8.0.0/16", "2001:db8::/32"], "INTERNAL_HEADER": PROBE_HEADER}
PROBE = "邻居私搭乱建找谁"  # what a monitoring probe asks
VISITOR = "违章搭建怎么举报"


def _ask(client: FlaskClient, q: str, address: str = "127.0.0.1", **headers: str) -> str:
    response = client.post(
        "/api/ask", json={"q": q}, headers=headers, environ_base={"REMOTE_ADDR": address}
    )
    assert response.status_code == 200, response.text
    assert response.get_json()["type"] == "answer"  # internal questions are answered as any
    return str(response.get_json()["query_id"])


def _csv_questions(client: FlaskClient, query: str = "") -> list[str]:
    response = client.get(f"/admin/export/queries.csv{query}")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    return [row[1] for row in rows[1:]]


@pytest.fixture
def probed(make_app: Callable[..., Flask]) -> tuple[Flask, FlaskClient, dict[str, Any]]:  # noqa: F811
    """An app with the settings; one visitor's question and three probes, logged."""
    app = make_app(**SETTINGS)
    analyst = logged_in(app)
    hot_before = analyst.get("/api/hot").get_json()
    ids = {
        "visitor": _ask(analyst, VISITOR, "192.0.2.7"),
        "range": _ask(analyst, PROBE, "10.8.3.4"),
        "v6": _ask(analyst, PROBE, "2001:db8::5"),
        "header": _ask(analyst, PROBE, "192.0.2.9", **{PROBE_HEADER: "1"}),
    }
    for _ in range(20):  # enough to be the top FAQ and a spike, if they counted
        _ask(analyst, PROBE, "10.8.3.4")
    get_service(app).querylog.flush()
    return app, analyst, {"ids": ids, "hot_before": hot_before}


def test_internal_questions_are_logged_marked(probed) -> None:
    app, _, found = probed
    log = get_service(app).querylog
    marked = {str(r["id"]): r["internal"] for r in log.queries(internal=None, limit=None)}
    ids = found["ids"]
    assert marked[ids["visitor"]] is False
    assert marked[ids["range"]] is marked[ids["v6"]] is marked[ids["header"]] is True
    assert sum(marked.values()) == 23


def test_the_console_leaves_internal_traffic_out(probed) -> None:
    app, analyst, found = probed
    dashboard = analyst.get("/admin/").text
    assert "共 1 次" in dashboard  # the daily chart's description counts the visitor only
    assert 'id="spikes"' not in dashboard  # 23 probes today would be a spike
    assert PROBE not in analyst.get("/admin/queries").text
    assert VISITOR in analyst.get("/admin/queries").text
    assert PROBE not in analyst.get("/admin/clusters").text
    assert PROBE not in analyst.get("/admin/suggestions").text
    assert _csv_questions(analyst) == [VISITOR]
    assert PROBE not in analyst.get("/admin/export/clusters.csv").data.decode("utf-8-sig")
    log = get_service(app).querylog
    assert log.top_faqs() == [{"faq_id": "building-report", "count": 1}]
    assert spikes(log) == []  # what python -m bot report shows too
    # The popular questions come from the bank, not the log: probes cannot move them.
    assert analyst.get("/api/hot").get_json() == found["hot_before"]


def test_the_question_list_shows_internal_traffic_on_request(probed) -> None:
    _, analyst, _ = probed
    internal = analyst.get("/admin/queries?traffic=internal").text
    assert PROBE in internal and VISITOR not in internal
    assert '<span class="internal-mark">内部</span>' in internal
    assert '<option value="internal" selected>仅内部流量</option>' in internal
    everything = analyst.get("/admin/queries?traffic=all").text
    assert PROBE in everything and VISITOR in everything
    assert _csv_questions(analyst, "?traffic=internal") == [PROBE] * 23
    assert len(_csv_questions(analyst, "?traffic=all")) == 24
    bad = analyst.get("/admin/queries?traffic=everyone").text
    assert "流量范围无效，已只显示访客提问。" in bad and PROBE not in bad


def test_without_the_settings_no_request_is_internal(make_app) -> None:  # noqa: F811
    app = make_app()
    client = app.test_client()
    _ask(client, PROBE, "10.8.3.4", **{PROBE_HEADER: "1"})
    get_service(app).querylog.flush()
    assert [r["internal"] for r in get_service(app).querylog.queries(internal=None)] == [False]


def test_a_bad_range_is_refused_at_start_up(tmp_path: Path, faq_dir: Path, jieba_cache) -> None:
    with pytest.raises(ConfigError) as excinfo:
        create_app(
            {"FAQ_DIR": str(faq_dir), "CACHE_DIR": str(jieba_cache), "INTERNAL_NETWORKS": ["10.8"]},
            instance_path=tmp_path / "instance",
        )
    assert str(excinfo.value) == (
        "INTERNAL_NETWORKS: '10.8' is not an address range "
        "(write it like 10.0.0.0/8, 192.168.1.20 or 2001:db8::/32)"
    )
