"""Hostile requests against a real gunicorn: every refusal is our JSON error with our headers."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn_server import gunicorn

MINI_FAQ = Path(__file__).parent / "data" / "mini_faq"
SECURITY = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, jieba_cache: Path) -> Iterator[int]:
    """One gunicorn (2 workers) on the mini bank for the whole module; yields its port."""
    root = tmp_path_factory.mktemp("edge")
    shutil.copytree(MINI_FAQ, root / "faq")
    settings = {
        "INSTANCE_PATH": str(root / "instance"),
        "FAQ_DIR": str(root / "faq"),
        "CACHE_DIR": str(jieba_cache),
        "RATELIMIT_ENABLED": "false",
    }
    log_path = root / "gunicorn.log"
    with gunicorn(log_path, settings=settings, workers=2) as (port, _proc):
        yield port
    assert "Traceback" not in log_path.read_text("utf-8", "replace")


def _error(response: http.client.HTTPResponse) -> dict[str, str]:
    """The JSON error body of ``response``, after checking its headers."""
    for name in SECURITY:
        assert response.getheader(name), f"{name} missing"
    assert response.getheader("Content-Type", "").startswith("application/json")
    return json.loads(response.read())["error"]  # type: ignore[no-any-return]


def test_a_deeply_nested_body_is_bad_json_not_a_500(server: int) -> None:
    body = b'{"q": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert 2000 < len(body) < 2100
    statuses = []
    for _ in range(20):
        conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
        conn.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        statuses.append(response.status)
        assert _error(response) == {
            "code": "bad_json",
            "message": "请求内容无法识别，请刷新页面后重试。",
        }
        conn.close()
    assert statuses == [400] * 20


def test_a_chunked_body_over_the_limit_is_413(server: int) -> None:
    chunk = b'{"q": "' + b"x" * 16_000
    statuses = []
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", server, timeout=20)
        conn.putrequest("POST", "/api/ask")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        sent = 0
        try:
            while sent < 1_000_000:  # 1 MB in chunks of 16 KB
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        response = conn.getresponse()
        statuses.append(response.status)
        assert _error(response)["code"] == "payload_too_large"
        conn.close()
    assert statuses == [413] * 3


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; return the status, headers and body gunicorn answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET /api/suggest?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "uri_too_long",
        ),
        (
            b"GET /api/hot HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 9000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET /api/hot HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ],
    ids=["url-5kb", "header-9kb", "bad-version"],
)
def test_gunicorns_own_refusals_are_json_with_security_headers(
    server: int, request_bytes: bytes, status: int, code: str
) -> None:
    got, headers, body = _raw(server, request_bytes)
    assert got == status
    for name in SECURITY:
        assert name in headers, f"{name} missing: {headers}"
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert error["message"] and all(ord(ch) < 0x80 for ch in error["code"])
