"""Health and metrics endpoints for operators and Prometheus.

/healthz tells anyone only whether this process can use the database. /metrics counts mail
of every account, so it asks for the Bearer token `[web] metrics_token` and does not exist
(404) while none is configured.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from storage.db import SchemaError, check_schema
from storage.models import Entry, Intake, database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer whether the database is reachable and its schema current; nothing else."""
    try:
        check_schema(database.obj)
    except SchemaError as error:
        return jsonify(status="error", database="reachable", schema=str(error)), 503
    except Exception as error:  # noqa: BLE001 - an unreachable database is the answer here
        return jsonify(status="error", database=f"unreachable: {error.__class__.__name__}"), 503
    return jsonify(status="ok", database="reachable", schema="current")


def _metrics_allowed() -> bool:
    """Whether the request carries the configured metrics token (compared in constant time)."""
    expected = current_app.config["POSTROOM_SETTINGS"].web.metrics_token
    if not expected:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    digest = hashlib.sha256  # equal lengths, so the comparison says nothing of the token's
    return hmac.compare_digest(
        digest(given.strip().encode()).digest(), digest(expected.encode()).digest()
    )


@bp.get("/metrics")
def metrics():
    """Prometheus text format, computed from the database so every process agrees."""
    if not _metrics_allowed():
        return Response(
            "send the metrics token: Authorization: Bearer <[web] metrics_token>\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="postroom metrics"'},
            mimetype="text/plain",
        )
    registry = CollectorRegistry()
    received = Gauge(
        "postroom_mails_received", "Deliveries accepted (intake records)", registry=registry
    )
    failures = Gauge(
        "postroom_parse_failures", "Entries stored raw with a parse error", registry=registry
    )
    pending = Gauge(
        "postroom_intake_pending", "Deliveries waiting for parse and route", registry=registry
    )
    unassigned = Gauge(
        "postroom_unassigned_entries", "Mail that matched no project", registry=registry
    )
    open_entries = Gauge("postroom_open_entries", "Entries not ticked done", registry=registry)
    last_mail = Gauge(
        "postroom_last_mail_received_timestamp_seconds",
        "When the newest delivery was accepted (0: none yet)",
        registry=registry,
    )
    received.set(Intake.select().count())
    pending.set(Intake.select().where(Intake.state == "pending").count())
    failures.set(Entry.select().where(Entry.parse_error.is_null(False)).count())
    unassigned.set(
        Entry.select().where(Entry.project.is_null() & (Entry.spam == False)).count()  # noqa: E712
    )
    open_entries.set(Entry.select().where(Entry.status == "open").count())
    newest = Intake.select(Intake.received_at).order_by(Intake.id.desc()).first()
    if newest is not None:
        last_mail.set(newest.received_at.replace(tzinfo=dt.UTC).timestamp())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
