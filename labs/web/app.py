"""The lab console: a Flask app (served by waitress, see ``cli.py``) over the labs API and Prometheus.

Security model (docs/console.md): one secret token. The JSON API takes ``Authorization: Bearer TOKEN``; a
browser opens ``/?token=TOKEN`` once and gets an HttpOnly SameSite=Strict session cookie, and every POST it
makes carries the session's CSRF token in ``X-CSRF-Token``. Requests whose Host header is not the bound
address or localhost are refused (DNS rebinding). Static files need no token. Bad input is answered 4xx.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, session
from obslab.labs.web import charts
from werkzeug.exceptions import HTTPException

from obslab import __version__
from obslab.prom import PromAPIError, PromClient

#: A lab id as the catalog writes them; anything else is refused before the catalog is even consulted.
LAB_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
MAX_ANSWER_FIELD = 200
MIN_DURATION, MAX_DURATION = 30, 4 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def default_labs_api() -> ModuleType:
    """The real labs API (imported when first used, so the console starts even while labs load slowly)."""
    return importlib.import_module("obslab.labs.api")


def default_dashboard(uid: str) -> dict[str, Any]:
    from obslab.dashboards.build import load

    return load(uid)


def default_expand(expr: str, values: Mapping[str, str]) -> str:
    from obslab.dashboards.build import expand

    return expand(expr, values)


def default_hint_texts(lab_id: str) -> list[str]:
    """The hint ladder of a lab, so a reloaded run page shows the hints already asked for."""
    from obslab.labs.catalog import load_catalog

    lab = load_catalog().get(lab_id)
    return [str(h).strip() for h in lab["hints"]] if lab is not None else []


def _host_name(host_header: str) -> str:
    """The host part of a Host header (``[::1]:19300`` → ``::1``, ``localhost:19300`` → ``localhost``)."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def create_app(
    token: str,
    *,
    bind_host: str = "127.0.0.1",
    prometheus_url: str = "http://127.0.0.1:19090",
    links: Mapping[str, str] | None = None,
    labs_api: Callable[[], Any] = default_labs_api,
    dashboard: Callable[[str], dict[str, Any]] = default_dashboard,
    expand: Callable[[str, Mapping[str, str]], str] = default_expand,
    hint_texts: Callable[[str], list[str]] = default_hint_texts,
    extra_hosts: Iterable[str] = (),
) -> Flask:
    """The console app. ``labs_api`` returns an object with the labs API functions (the real module)."""
    if not token:
        raise ValueError("the console needs a token")
    app = Flask(__name__)
    app.config.update(
        # Derived from the token: a console restarted with the same token keeps its sessions, a new token
        # invalidates them all.
        SECRET_KEY=hmac.new(token.encode(), b"obslab-console-session", hashlib.sha256).hexdigest(),
        SESSION_COOKIE_NAME="obslab_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=False,  # plain http on loopback; see docs/console.md for remote use
        MAX_CONTENT_LENGTH=16 * 1024,
    )
    allowed_hosts = set(LOCAL_HOSTS)
    if bind_host not in ("", "0.0.0.0", "::"):
        allowed_hosts.add(bind_host.lower())
    allowed_hosts.update(h.lower().strip("[]") for h in extra_hosts)
    prom = PromClient(prometheus_url, timeout=10.0)
    token_bytes = token.encode()

    def token_ok(candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), token_bytes)

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    def fail(status: int, message: str) -> Response:
        if wants_json():
            resp = jsonify({"error": message, "status": status})
        else:
            resp = Response(
                render_template("error.html", status=status, message=message), mimetype="text/html"
            )
        resp.status_code = status
        return resp

    # ---- request guards -------------------------------------------------------------------------------
    @app.before_request
    def guard() -> Response | None:
        host = _host_name(request.headers.get("Host", ""))
        if host not in allowed_hosts:
            return fail(
                403,
                f"Host {host!r} is not this console's address (DNS rebinding protection); "
                "`obslab console --allow-host NAME` accepts another name",
            )
        if request.endpoint == "static":
            return None
        g.auth = None
        auth = request.headers.get("Authorization")
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "bearer" or not token_ok(value.strip()):
                return fail(401, "bad bearer token")
            g.auth = "bearer"
            return None
        url_token = request.args.get("token")
        if url_token is not None and request.method == "GET" and not wants_json():
            if not token_ok(url_token):
                return fail(401, "wrong token: open the URL printed by `obslab up` or `obslab console`")
            session.clear()
            session["auth"] = True
            session["csrf"] = secrets.token_urlsafe(32)
            # Drop the token from the address bar (and from history and Referer).
            return redirect(request.path, code=303)  # type: ignore[return-value]
        if session.get("auth") is True:
            g.auth = "session"
            if request.method not in SAFE_METHODS:
                sent = request.headers.get("X-CSRF-Token", "")
                if not sent or not hmac.compare_digest(sent.encode(), str(session.get("csrf", "")).encode()):
                    return fail(403, "missing or wrong CSRF token: reload the page")
            return None
        return fail(401, "a token is needed: open the URL printed by `obslab up` or `obslab console`")

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.endpoint != "static":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        return fail(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    def internal_error(e: Exception) -> Response:
        app.logger.exception("unexpected error")
        return fail(500, f"internal error: {type(e).__name__}")

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        return {"csrf_token": session.get("csrf", ""), "version": __version__, "links": dict(links or {})}

    # ---- labs API plumbing ----------------------------------------------------------------------------
    def labs() -> Any:
        return labs_api()

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a labs API call; its LabError (with ``http_status``) becomes a 4xx JSON answer."""
        api = labs()
        lab_error = getattr(api, "LabError", None)
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if lab_error is not None and isinstance(e, lab_error):
                status = int(getattr(e, "http_status", 400) or 400)
                abort(fail(status if 400 <= status < 500 else 409, str(e)))
            raise

    def catalog() -> list[dict[str, Any]]:
        return list(call(labs().catalog))

    def catalog_entry(lab_id: str) -> dict[str, Any] | None:
        return next((lab for lab in catalog() if lab.get("id") == lab_id), None)

    def json_body() -> dict[str, Any]:
        if not request.data:
            return {}
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(fail(400, "the body must be a JSON object"))
        return body

    # ---- pages ----------------------------------------------------------------------------------------
    @app.get("/")
    def landing() -> str:
        try:
            current = call(labs().current)
        except HTTPException:
            raise
        except Exception as e:  # the landing page must open even when the labs engine is broken
            current = {"state": "unavailable", "error": str(e)}
        return render_template("landing.html", current=current, page="home")

    @app.get("/labs")
    def catalog_page() -> str:
        labs_list = catalog()
        resource = request.args.get("resource", "")
        difficulty = request.args.get("difficulty", "")
        resources = sorted({str(lab.get("resource", "")) for lab in labs_list})
        difficulties = sorted({str(lab.get("difficulty", "")) for lab in labs_list})
        shown = [
            lab
            for lab in labs_list
            if (not resource or lab.get("resource") == resource)
            and (not difficulty or str(lab.get("difficulty")) == difficulty)
        ]
        return render_template(
            "catalog.html",
            labs=shown,
            resources=resources,
            difficulties=difficulties,
            resource=resource,
            difficulty=difficulty,
            page="labs",
        )

    @app.get("/run")
    def run_page() -> str:
        return render_template("run.html", dashboards=charts.CHART_DASHBOARDS, page="run")

    @app.get("/history")
    def history_page() -> str:
        runs = list(call(labs().history))
        titles = {lab.get("id"): lab.get("title") for lab in catalog()}
        return render_template("history.html", runs=runs, titles=titles, page="history")

    # ---- JSON API -------------------------------------------------------------------------------------
    @app.get("/api/health")
    def health() -> Response:
        return jsonify({"ok": True, "version": __version__})

    @app.get("/api/labs")
    def api_labs() -> Response:
        return jsonify(catalog())

    @app.post("/api/labs/<lab_id>/start")
    def api_start(lab_id: str) -> Response:
        if not LAB_ID.match(lab_id) or catalog_entry(lab_id) is None:
            return fail(404, f"no lab {lab_id!r} in the catalog")
        body = json_body()
        duration = body.get("duration")
        if duration is not None and (
            isinstance(duration, bool)
            or not isinstance(duration, int)
            or not MIN_DURATION <= duration <= MAX_DURATION
        ):
            return fail(400, f"duration must be an integer number of seconds, {MIN_DURATION}-{MAX_DURATION}")
        unknown = set(body) - {"duration"}
        if unknown:
            return fail(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        return jsonify(call(labs().start, lab_id, duration=duration))

    @app.get("/api/lab")
    def api_current() -> Response:
        current = dict(call(labs().current))
        used = current.get("hints_used")
        if current.get("lab") and isinstance(used, int) and used > 0 and "hints" not in current:
            # On failure the run page shows only the hints asked for since it opened.
            with contextlib.suppress(KeyError, OSError, ValueError, ImportError):
                current["hints"] = hint_texts(str(current["lab"]))[:used]
        return jsonify(current)

    @app.post("/api/lab/hint")
    def api_hint() -> Response:
        return jsonify(call(labs().hint))

    @app.post("/api/lab/answer")
    def api_answer() -> Response:
        body = json_body()
        fields = {}
        for name in ("resource", "signal", "cause"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_ANSWER_FIELD:
                return fail(
                    400, f"{name!r} must be a non-empty string (at most {MAX_ANSWER_FIELD} characters)"
                )
            fields[name] = value.strip()
        unknown = set(body) - set(fields)
        if unknown:
            return fail(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        current = call(labs().current)
        entry = catalog_entry(str(current.get("lab") or "")) if current.get("lab") else None
        if entry is not None:
            options = entry.get("answer_options") or {}
            allowed = {
                "resource": [str(x) for x in options.get("resource", [])],
                "signal": [str(x) for x in options.get("signal", [])],
                "cause": [str(c.get("id")) for c in options.get("cause", [])],
            }
            for name, value in fields.items():
                if allowed[name] and value not in allowed[name]:
                    return fail(400, f"{name} {value!r} is not one of this lab's options")
        return jsonify(call(labs().answer, fields["resource"], fields["signal"], fields["cause"]))

    @app.post("/api/lab/stop")
    def api_stop() -> Response:
        return jsonify(call(labs().stop))

    @app.get("/api/history")
    def api_history() -> Response:
        return jsonify(list(call(labs().history)))

    # ---- charts and alerts ----------------------------------------------------------------------------
    def chart_dashboard(uid: str) -> dict[str, Any]:
        if uid not in charts.CHART_DASHBOARDS:
            abort(fail(404, f"no chartable dashboard {uid!r}"))
        try:
            return dashboard(uid)
        except (KeyError, OSError, ImportError) as e:
            abort(fail(404, f"dashboard {uid!r} is not available: {e}"))
            raise  # unreachable; for type checkers

    @app.get("/api/dashboards/<uid>/panels")
    def api_panels(uid: str) -> Response:
        dash = chart_dashboard(uid)
        return jsonify({"uid": uid, "title": dash.get("title", uid), "panels": charts.chart_panels(dash)})

    @app.get("/api/dashboards/<uid>/panels/<int:panel_id>/data")
    def api_panel_data(uid: str, panel_id: int) -> Response:
        dash = chart_dashboard(uid)
        panel = charts.find_panel(dash, panel_id)
        if panel is None:
            return fail(404, f"dashboard {uid!r} has no panel {panel_id} with queries")
        raw_minutes = request.args.get("minutes", "15")
        if not raw_minutes.isdigit() or not 1 <= int(raw_minutes) <= 180:
            return fail(400, "minutes must be an integer 1-180")
        try:
            queries = charts.panel_queries(dash, panel, expand)
        except KeyError as e:
            return fail(404, f"panel {panel_id} cannot be expanded: {e}")
        start, end, step = charts.time_grid(time.time(), int(raw_minutes))
        results = []
        try:
            for expr, fmt in queries:
                results.append((expr, fmt, prom.query_range(expr, start, end, step)))
        except (PromAPIError, OSError) as e:
            return fail(502, f"Prometheus ({prometheus_url}) could not answer: {e}")
        return jsonify(
            {"id": panel_id, "title": panel.get("title", ""), **charts.to_columns(results, start, end, step)}
        )

    @app.get("/api/alerts")
    def api_alerts() -> Response:
        try:
            alerts = prom.alerts()
        except (PromAPIError, OSError) as e:
            return fail(502, f"Prometheus ({prometheus_url}) could not answer: {e}")
        return jsonify(charts.summarize_alerts(alerts))

    return app
