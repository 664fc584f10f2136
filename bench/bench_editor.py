"""The console's FAQ editor on the shipped bank: how long a curator waits.

    .venv/bin/python bench/bench_editor.py [--rounds 5]

Builds the real app (Flask's test client, no network) on a copy of the shipped
bank in a temporary folder, logs in, and for each round opens the form of
``vendor-report`` (GET), previews an edited answer and saves it (the whole
bank validated, the YAML written, the bank published through the hot reload).
As the baseline, each round also makes the same change as a curator in the
terminal would (the file written, untimed) and times the hot reload alone
(``bot.reload.rebuild``, what ``python -m bot reload`` and the bank page's
button run) on the same folder. Prints the medians and each one's ratio to
the baseline's, with the machine and its load average.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, machine
from werkzeug.security import generate_password_hash

from bot.curate import Draft
from bot.reload import rebuild
from bot.web import create_app

FIELDS = ("question", "alternates", "answer", "category", "keywords", "related", "basis",
          "reviewed")  # fmt: skip
ENTRY = "vendor-report"


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF field"
    return match.group(1)


def _form(page: str) -> dict[str, str]:
    """The form's values as a browser would post them."""
    form = {"csrf_token": _token(page)}
    digest = re.search(r'name="digest" value="([^"]*)"', page)
    assert digest, "no digest in the form"
    form["digest"] = digest.group(1)
    for name in FIELDS:
        m = re.search(rf'<input id="f-{name}" name="{name}" value="([^"]*)"', page) or re.search(
            rf'<textarea id="f-{name}" name="{name}"[^>]*>(.*?)</textarea>', page, re.S
        )
        assert m, f"no field {name}"
        form[name] = html.unescape(m.group(1))
    for name, value in re.findall(r'<input type="hidden" name="(was-\w+)" value="([^"]*)"', page):
        form[name] = html.unescape(value)
    return form


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        faq = root / "faq"
        shutil.copytree(ROOT / "faq", faq)
        index = root / "instance" / "index.pkl"
        config = {
            "TESTING": True,
            "FAQ_DIR": str(faq),
            "INDEX_PATH": str(index),
            "CACHE_DIR": str(root / "cache"),
            "RATELIMIT_ENABLED": False,
            "ADMIN_PASSWORD_HASH": generate_password_hash("bench", method="pbkdf2:sha256:1000"),
        }
        app = create_app(config, instance_path=root / "instance")
        client = app.test_client()
        token = _token(client.get("/admin/login").text)
        client.post("/admin/login", data={"password": "bench", "csrf_token": token})
        times: dict[str, list[float]] = {"open": [], "preview": [], "save": [], "reload": []}
        for n in range(args.rounds):
            started = time.perf_counter()
            page = client.get(f"/admin/faq/{ENTRY}").text
            times["open"].append(time.perf_counter() - started)
            form = _form(page)
            form["answer"] += f"\n第 {n + 1} 次修改。"
            started = time.perf_counter()
            response = client.post(f"/admin/faq/{ENTRY}", data={**form, "do": "preview"})
            times["preview"].append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
            started = time.perf_counter()
            response = client.post(f"/admin/faq/{ENTRY}", data={**form, "do": "save"})
            times["save"].append(time.perf_counter() - started)
            assert response.status_code == 303, response.status_code
            draft = Draft(faq)  # the same change made in the terminal, then the reload
            draft.update_entry(ENTRY, {"answer": form["answer"] + "（终端）"})
            draft.write()
            started = time.perf_counter()
            result = rebuild(faq, index, cache_dir=root / "cache")
            times["reload"].append(time.perf_counter() - started)
            assert result.ok, result.errors
        app.extensions["xiaocheng"].close()
    entries = len(app.extensions["xiaocheng"].bot.bank.faqs)
    base = statistics.median(times["reload"])
    print(machine())
    print(f"\nshipped bank, {entries} entries, {args.rounds} rounds\n")
    print("| step | median s | ratio to the reload alone |")
    print("|---|---|---|")
    for step, label in (("open", "open the form"), ("preview", "preview"),
                        ("save", "save (check, write, reload)"),
                        ("reload", "baseline: reload alone, after the same change")):  # fmt: skip
        median = statistics.median(times[step])
        print(f"| {label} | {median:.3f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
