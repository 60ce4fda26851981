"""Health and metrics endpoints for operators and Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from storage.db import SchemaError, check_schema
from storage.models import Entry, Intake, database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        check_schema(database.obj)
    except SchemaError as error:
        return jsonify(status="error", database="reachable", schema=str(error)), 503
    except Exception as error:  # noqa: BLE001 - an unreachable database is the answer here
        return jsonify(status="error", database=f"unreachable: {error.__class__.__name__}"), 503
    last = Intake.select(Intake.received_at).order_by(Intake.id.desc()).first()
    return jsonify(
        status="ok",
        database="reachable",
        schema="current",
        last_mail_received_at=last.received_at.isoformat() if last else None,
    )


@bp.get("/metrics")
def metrics():
    """Prometheus text format, computed from the database so every process agrees."""
    registry = CollectorRegistry()
    received = Gauge("postroom_mails_received", "Deliveries accepted (intake records)",
                     registry=registry)  # fmt: skip
    failures = Gauge("postroom_parse_failures", "Entries stored raw with a parse error",
                     registry=registry)  # fmt: skip
    pending = Gauge("postroom_intake_pending", "Deliveries waiting for parse and route",
                    registry=registry)  # fmt: skip
    unassigned = Gauge("postroom_unassigned_entries", "Mail that matched no project",
                       registry=registry)  # fmt: skip
    open_entries = Gauge("postroom_open_entries", "Entries not ticked done", registry=registry)
    received.set(Intake.select().count())
    pending.set(Intake.select().where(Intake.state == "pending").count())
    failures.set(Entry.select().where(Entry.parse_error.is_null(False)).count())
    unassigned.set(
        Entry.select().where(Entry.project.is_null() & (Entry.spam == False)).count()  # noqa: E712
    )
    open_entries.set(Entry.select().where(Entry.status == "open").count())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
