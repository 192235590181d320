"""The console's security and input rules, rule by rule, on the Flask app.

The labs layer here is a small in-memory fake (fake_labs.py) so every rule is checked in isolation;
the browser test drives the real labs API and a real lab. Charts use the real generated dashboards and,
where data is needed, a real Prometheus.
"""

from __future__ import annotations

import re
import time

import pytest
from fake_labs import FakeLabs
from flask import Flask
from flask.testing import FlaskClient
from obslab.labs.web.app import create_app

from obslab.procs import free_port
from obslab.prom import PromClient, PrometheusServer, ScrapeJob, render_config

TOKEN = "test-token-0123456789abcdef"
HOST = {"Host": "127.0.0.1:19300"}
BEARER = {**HOST, "Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def labs() -> FakeLabs:
    return FakeLabs()


@pytest.fixture
def app(labs: FakeLabs) -> Flask:
    return create_app(
        TOKEN,
        prometheus_url="http://127.0.0.1:9",
        labs_api=lambda: labs,
        hint_texts=lambda lab: ["h1", "h2", "h3"],
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def login(client: FlaskClient) -> str:
    """Open /?token=..., follow the redirect, return the page's CSRF token."""
    r = client.get(f"/?token={TOKEN}", headers=HOST)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    page = client.get("/", headers=HOST)
    assert page.status_code == 200
    m = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    assert m and len(m.group(1)) >= 32
    return m.group(1)


# ---- token ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/labs", "/run", "/history", "/api/labs", "/api/lab", "/api/alerts"])
def test_everything_but_static_needs_the_token(client: FlaskClient, path: str) -> None:
    r = client.get(path, headers=HOST)
    assert r.status_code == 401
    assert client.get(path, headers={**HOST, "Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path, headers={**HOST, "Authorization": f"Basic {TOKEN}"}).status_code == 401


@pytest.mark.parametrize(
    "path", ["/api/labs/cpu-hog/start", "/api/lab/hint", "/api/lab/answer", "/api/lab/stop"]
)
def test_posts_need_the_token(client: FlaskClient, labs: FakeLabs, path: str) -> None:
    assert client.post(path, headers=HOST, json={}).status_code == 401
    assert labs.calls == []


def test_static_files_need_no_token(client: FlaskClient) -> None:
    r = client.get("/static/console.js", headers=HOST)
    assert r.status_code == 200
    assert "javascript" in r.content_type


def test_bearer_token_opens_the_api(client: FlaskClient) -> None:
    r = client.get("/api/labs", headers=BEARER)
    assert r.status_code == 200
    assert [lab["id"] for lab in r.json] == ["cpu-hog", "mem-leak"]
    # The bearer API needs no CSRF token (no cookie is involved).
    r = client.post("/api/labs/cpu-hog/start", headers=BEARER)
    assert r.status_code == 200 and r.json["state"] == "running"


def test_wrong_url_token_is_refused_and_sets_no_session(client: FlaskClient) -> None:
    r = client.get("/?token=nope", headers=HOST)
    assert r.status_code == 401
    assert "Set-Cookie" not in r.headers
    assert client.get("/api/lab", headers=HOST).status_code == 401


def test_url_token_gives_an_httponly_samesite_cookie(client: FlaskClient) -> None:
    r = client.get(f"/labs?token={TOKEN}", headers=HOST)
    assert r.status_code == 303 and r.headers["Location"] == "/labs"  # token dropped from the URL
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/api/lab", headers=HOST).json == {"state": "idle"}


def test_the_token_is_not_accepted_in_api_urls(client: FlaskClient) -> None:
    assert client.get(f"/api/labs?token={TOKEN}", headers=HOST).status_code == 401


def test_a_bad_bearer_overrides_a_good_session(client: FlaskClient) -> None:
    login(client)
    assert client.get("/api/lab", headers={**HOST, "Authorization": "Bearer bad"}).status_code == 401


# ---- CSRF -------------------------------------------------------------------------------------------
def test_session_posts_need_the_csrf_token(client: FlaskClient, labs: FakeLabs) -> None:
    csrf = login(client)
    assert client.post("/api/labs/cpu-hog/start", headers=HOST, json={}).status_code == 403
    bad = {**HOST, "X-CSRF-Token": "x" * 43}
    assert client.post("/api/labs/cpu-hog/start", headers=bad, json={}).status_code == 403
    assert labs.calls == []
    good = {**HOST, "X-CSRF-Token": csrf}
    r = client.post("/api/labs/cpu-hog/start", headers=good, json={})
    assert r.status_code == 200 and labs.calls == [("start", ("cpu-hog", None))]
    assert client.post("/api/lab/hint", headers=HOST).status_code == 403
    assert client.post("/api/lab/hint", headers=good).json["level"] == 1


def test_csrf_token_is_per_session(app: Flask) -> None:
    a, b = app.test_client(), app.test_client()
    assert login(a) != login(b)


# ---- Host (DNS rebinding) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:19300", "127.0.0.1.nip.io", "10.0.0.5:19300", ""]
)
def test_foreign_host_headers_are_refused(client: FlaskClient, host: str) -> None:
    for path in ("/api/labs", "/", "/static/console.js"):
        r = client.get(path, headers={"Host": host, "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403, (host, path)


@pytest.mark.parametrize("host", ["localhost:19300", "127.0.0.1", "[::1]:19300", "LOCALHOST"])
def test_local_host_headers_are_accepted(client: FlaskClient, host: str) -> None:
    assert (
        client.get("/api/labs", headers={"Host": host, "Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )


def test_extra_allowed_hosts(labs: FakeLabs) -> None:
    app = create_app(TOKEN, bind_host="0.0.0.0", labs_api=lambda: labs, extra_hosts=["lab-vm.example"])
    c = app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert c.get("/api/labs", headers={**auth, "Host": "lab-vm.example:19300"}).status_code == 200
    assert c.get("/api/labs", headers={**auth, "Host": "0.0.0.0:19300"}).status_code == 403
    assert c.get("/api/labs", headers={**auth, "Host": "other.example"}).status_code == 403


def test_bound_address_is_accepted(labs: FakeLabs) -> None:
    app = create_app(TOKEN, bind_host="192.0.2.7", labs_api=lambda: labs)
    c = app.test_client()
    ok = c.get("/api/labs", headers={"Host": "192.0.2.7:19300", "Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    bad = c.get("/api/labs", headers={"Host": "192.0.2.8:19300", "Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 403


# ---- headers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/api/labs", "/static/console.css", "/nope"])
def test_security_headers_everywhere(client: FlaskClient, path: str) -> None:
    r = client.get(path, headers=BEARER)
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_pages_have_no_inline_script(client: FlaskClient) -> None:
    login(client)
    for path in ("/", "/labs", "/run", "/history"):
        html = client.get(path, headers=HOST).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert " on" + "click=" not in html


# ---- lab ids and bad input --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lab_id", ["nope", "CPU-HOG", "..", "cpu-hog%00", "a" * 200, "%3Cscript%3E", "cpu hog", "-x"]
)
def test_unknown_or_malformed_lab_ids_are_404(client: FlaskClient, labs: FakeLabs, lab_id: str) -> None:
    r = client.post(f"/api/labs/{lab_id}/start", headers=BEARER)
    assert r.status_code == 404
    assert labs.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        b'{"duration": "60"}',
        b'{"duration": 5}',
        b'{"duration": 1e9}',
        b'{"duration": true}',
        b'{"duration": 60, "extra": 1}',
    ],
)
def test_bad_start_bodies_are_400(client: FlaskClient, labs: FakeLabs, body: bytes) -> None:
    r = client.post(
        "/api/labs/cpu-hog/start", headers={**BEARER, "Content-Type": "application/json"}, data=body
    )
    assert r.status_code == 400, r.json
    assert labs.calls == []


def test_start_with_duration_and_conflict(client: FlaskClient, labs: FakeLabs) -> None:
    assert client.post("/api/labs/cpu-hog/start", headers=BEARER, json={"duration": 60}).status_code == 200
    assert labs.calls == [("start", ("cpu-hog", 60))]
    r = client.post("/api/labs/mem-leak/start", headers=BEARER)
    assert r.status_code == 409 and "already running" in r.json["error"]


def test_lab_errors_map_to_4xx(client: FlaskClient) -> None:
    assert client.post("/api/lab/hint", headers=BEARER).status_code == 409
    assert client.post("/api/lab/stop", headers=BEARER).status_code == 409
    r = client.post(
        "/api/lab/answer", headers=BEARER, json={"resource": "cpu", "signal": "saturation", "cause": "hog"}
    )
    assert r.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"resource": "cpu", "signal": "saturation"},
        {"resource": "cpu", "signal": "saturation", "cause": 3},
        {"resource": "cpu", "signal": "saturation", "cause": ""},
        {"resource": "cpu", "signal": "saturation", "cause": "x" * 500},
        {"resource": "cpu", "signal": "saturation", "cause": "hog", "more": 1},
        {"resource": "disk", "signal": "saturation", "cause": "hog"},  # not one of the lab's options
        {"resource": "cpu", "signal": "saturation", "cause": "<script>"},
        [1],
    ],
)
def test_bad_answers_are_400(client: FlaskClient, labs: FakeLabs, body: object) -> None:
    client.post("/api/labs/cpu-hog/start", headers=BEARER)
    r = client.post("/api/lab/answer", headers=BEARER, json=body)
    assert r.status_code == 400, r.json
    assert [c for c in labs.calls if c[0] == "answer"] == []


def test_wrong_then_right_answer(client: FlaskClient) -> None:
    client.post("/api/labs/cpu-hog/start", headers=BEARER)
    wrong = client.post(
        "/api/lab/answer", headers=BEARER, json={"resource": "memory", "signal": "errors", "cause": "leak"}
    )
    assert wrong.status_code == 200 and wrong.json["correct"] is False and wrong.json["debrief"] is None
    right = client.post(
        "/api/lab/answer", headers=BEARER, json={"resource": "cpu", "signal": "saturation", "cause": "hog"}
    )
    assert right.json == {"correct": True, "feedback": "yes", "score": 90, "debrief": "debrief text"}
    hist = client.get("/history", headers=BEARER).get_data(as_text=True)
    assert "A CPU hog" in hist and "90" in hist


def test_oversized_body_is_413(client: FlaskClient) -> None:
    r = client.post("/api/lab/answer", headers=BEARER, data=b"{" + b" " * 20000 + b"}")
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/lab"),
        ("DELETE", "/api/labs"),
        ("GET", "/api/lab/hint"),
        ("GET", "/api/nothing"),
        ("GET", "/x"),
    ],
)
def test_wrong_method_or_path_is_4xx_json_for_api(client: FlaskClient, method: str, path: str) -> None:
    r = client.open(path, method=method, headers=BEARER)
    assert r.status_code in (404, 405)
    if path.startswith("/api/"):
        assert r.json["status"] == r.status_code


def test_catalog_filters(client: FlaskClient) -> None:
    page = client.get("/labs?resource=memory", headers=BEARER).get_data(as_text=True)
    assert 'data-lab="mem-leak"' in page and 'data-lab="cpu-hog"' not in page
    page = client.get("/labs?difficulty=easy", headers=BEARER).get_data(as_text=True)
    assert 'data-lab="cpu-hog"' in page and 'data-lab="mem-leak"' not in page
    page = client.get("/labs?resource=<b>x</b>", headers=BEARER).get_data(as_text=True)
    assert "No lab matches" in page and "<b>x</b>" not in page


# ---- charts -----------------------------------------------------------------------------------------
def test_only_the_lab_and_use_dashboards_are_chartable(client: FlaskClient) -> None:
    for uid in ("obslab-lab", "obslab-use"):
        r = client.get(f"/api/dashboards/{uid}/panels", headers=BEARER)
        assert r.status_code == 200
        assert r.json["panels"], uid
        assert all(p["kind"] in ("line", "stat") for p in r.json["panels"])
    for uid in ("obslab-demo", "obslab-ebpf", "../x", "nope"):
        assert client.get(f"/api/dashboards/{uid}/panels", headers=BEARER).status_code == 404


def test_panel_data_input_rules(client: FlaskClient) -> None:
    panels = client.get("/api/dashboards/obslab-lab/panels", headers=BEARER).json["panels"]
    pid = panels[0]["id"]
    base = f"/api/dashboards/obslab-lab/panels/{pid}/data"
    for bad in ("0", "181", "-5", "abc", "1e3", ""):
        assert client.get(f"{base}?minutes={bad}", headers=BEARER).status_code == 400, bad
    assert client.get("/api/dashboards/obslab-lab/panels/99999/data", headers=BEARER).status_code == 404
    assert client.get("/api/dashboards/obslab-lab/panels/x/data", headers=BEARER).status_code == 404
    # Prometheus down (port 9): a gateway error, not a crash.
    r = client.get(base, headers=BEARER)
    assert r.status_code == 502 and "Prometheus" in r.json["error"]
    assert client.get("/api/alerts", headers=BEARER).status_code == 502


def test_panel_data_from_a_real_prometheus(labs: FakeLabs) -> None:
    port = free_port()
    with PrometheusServer(
        render_config([ScrapeJob("prometheus", [f"127.0.0.1:{port}"])], scrape_interval="1s"), port=port
    ) as prom:
        _check_panel_data(labs, prom.url)


def _check_panel_data(labs: FakeLabs, prom_url: str) -> None:
    # A dashboard shaped like DASH's, querying Prometheus's own metrics, with a template variable.
    dash = {
        "uid": "obslab-lab",
        "templating": {"list": [{"name": "job", "type": "query", "current": {"value": "$__all"}}]},
        "panels": [
            {
                "id": 1,
                "type": "timeseries",
                "title": "up",
                "targets": [{"expr": 'up{job=~"$job"}', "legendFormat": "{{job}}"}],
            }
        ],
    }
    from obslab.dashboards.build import expand

    app = create_app(
        TOKEN, prometheus_url=prom_url, labs_api=lambda: labs, dashboard=lambda uid: dash, expand=expand
    )
    c = app.test_client()
    PromClient(prom_url).wait_for("up", timeout=60)
    # The range ends on a 5 s step boundary: poll until that boundary passes the first scrape.
    deadline = time.monotonic() + 60
    while True:
        r = c.get("/api/dashboards/obslab-lab/panels/1/data?minutes=5", headers=BEARER)
        assert r.status_code == 200
        if r.json["series"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [s["label"] for s in r.json["series"]] == ["prometheus"]
    values = [v for v in r.json["series"][0]["values"] if v is not None]
    assert values and set(values) == {1.0}
    assert len(r.json["timestamps"]) == len(r.json["series"][0]["values"])


def test_current_run_carries_the_hints_already_given(client: FlaskClient) -> None:
    client.post("/api/labs/cpu-hog/start", headers=BEARER)
    assert "hints" not in client.get("/api/lab", headers=BEARER).json
    client.post("/api/lab/hint", headers=BEARER)
    client.post("/api/lab/hint", headers=BEARER)
    assert client.get("/api/lab", headers=BEARER).json["hints"] == ["h1", "h2"]
