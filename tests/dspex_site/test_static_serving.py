"""Production serving: static files under gunicorn with DEBUG=0, and API docs that load nothing from elsewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders

from tests.integration.harness import free_port

REPO = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "DEBUG": "0", "SECRET_KEY": "static-test",
        "ALLOWED_HOSTS": "127.0.0.1", "DSPEX_VAR_DIR": str(tmp_path / "var"),
        "DSPEX_STATIC_ROOT": str(tmp_path / "static"),
    }


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_gunicorn_with_debug_off_serves_the_admin_css(tmp_path):
    env = production_env(tmp_path)
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=300,
    )
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "dspex_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, login_page = get(f"{base}/admin/login/")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
                time.sleep(0.3)
        assert status == 200
        stylesheets = re.findall(rb'<link rel="stylesheet" href="([^"]+)"', login_page)
        assert b"/static/admin/css/base.css" in stylesheets
        for href in stylesheets:
            css_status, content_type, body = get(base + href.decode())
            assert (css_status, content_type.split(";")[0]) == (200, "text/css"), href
            assert body.strip()
    finally:
        server.terminate()
        server.wait(30)


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.django_db
def test_the_api_docs_page_loads_only_files_this_project_serves(client, user):
    client.force_login(user)

    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    parser = _Assets()
    parser.feed(page)
    assert len(parser.urls) >= 3, parser.urls  # stylesheet, bundle, preset (and the favicon)
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is loaded from another host"
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is referenced but no app ships it"
    assert '"validatorUrl": null' in page  # no badge fetched from the public validator
    assert "cdn" not in page.lower()
