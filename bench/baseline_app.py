"""The load benchmark's baseline: the smallest Flask app answering POST /api/ask.

bench_load.py serves it with the same gunicorn settings as 智能小城 and drives
it with the same wrk script, in turns with the real app, so the ratio between
the two says how close the real app comes to what Flask and gunicorn alone can
do on the machine at that moment. It parses the question and returns a small
JSON reply; no engine, no query log.
"""

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.post("/api/ask")
def ask() -> Response:
    body = request.get_json()
    return jsonify({"q": body.get("q"), "type": "fallback", "candidates": []})


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})
