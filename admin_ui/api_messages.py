"""API view of mail to the customer: POST /projects/{id}/messages queues it like the UI does."""

from __future__ import annotations

import base64
import binascii

from flask import current_app, url_for

from admin_ui import api_schemas as schemas
from admin_ui.api_entries import entry_json, project_or_404
from admin_ui.api_request import ApiError, api, api_user
from domain.translatable import N_
from postroom.mail_templates import TemplateError
from postroom.outbound import OutboundError, queue_message
from storage.timeline import entry_of_account


@api.body(schemas.MessageCreate)
@api.response(201, schemas.Entry, description="The new outbound entry.")
def send_message(project_id: int, body: dict):
    """Send mail to the customer: it is queued as an outbound entry and sent by the worker"""
    project = project_or_404(project_id)
    template_id = body.get("template_id")
    written = body.get("subject", "").strip() and body.get("body", "").strip()
    if template_id is None and not written:
        raise ApiError(422, N_("subject and body are required unless a template_id is given"))
    answer = None
    if body.get("answer_entry_id") is not None:
        answer = entry_of_account(api_user().account_id, body["answer_entry_id"])
        if answer is None or answer.project_id != project.id:
            raise ApiError(422, N_("answer_entry_id is not an entry of this project"))
    uploads = [_upload(number, item) for number, item in enumerate(body.get("attachments", []))]
    try:
        entry = queue_message(
            project,
            api_user(),
            body["to"],
            body.get("subject", ""),
            body.get("body", ""),
            uploads,
            template_id=template_id,
            answer_entry=answer,
            settings=current_app.config["POSTROOM_SETTINGS"],
        )
    except (OutboundError, TemplateError) as error:
        raise ApiError(422, str(error)) from None
    return entry_json(entry), 201, {"Location": url_for("api.get_entry", entry_id=entry.id)}


def _upload(number: int, item: dict) -> tuple[str, str, bytes]:
    try:
        data = base64.b64decode(item["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422, N_("attachments[%(number)s].content_base64 is not base64"), number=number
        ) from None
    return item["filename"], item["content_type"], data
