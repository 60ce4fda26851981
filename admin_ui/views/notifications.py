"""The bell: a user's notifications, marking them read, their profile and followed projects.

Everything here changes only the signed-in user's own things, so read-only members may use
it too (admin_ui.app.READ_ONLY_MAY_POST lists these endpoints).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from admin_ui.forms import FollowForm, NextForm, PreferencesForm, chosen_preferences
from admin_ui.redirects import safe_next as _safe_next
from domain import notifications
from domain.errors import NotFound
from domain.tokens import api_tokens
from postroom.mail_language import words_for
from postroom.notify_text import texts_for
from postroom.outbound import mail_can_go_out
from storage import notifications as store
from storage.models import utcnow

bp = Blueprint("notifications", __name__)

SHOWN = 100
DELIVERIES = ("immediate", "digest")


@bp.app_context_processor
def unread_notifications():
    user = g.get("user")
    if user is None:
        return {}
    return {"unread_notifications": store.unread_count(user.id)}


@bp.app_template_global()
def follows_project(project_id: int) -> bool:
    """Whether the signed-in user follows a project (for the follow button)."""
    user = g.get("user")
    return user is not None and store.is_following(project_id, user.id)


@bp.get("/notifications")
def index():
    rows = store.notifications_of(g.user.id, limit=SHOWN)
    for row, text in zip(rows, texts_for(rows, words_for(g.user)), strict=True):
        row.text = text  # in the reader's language; shown only, never saved
    return render_template("notifications.html", notifications=rows)


@bp.post("/notifications/<int:notification_id>/read")
def mark_read(notification_id: int):
    try:
        notifications.mark_read(g.user, notification_id)
    except NotFound:
        abort(404)
    return redirect(_safe_next(NextForm().next.data, url_for(".index")))


@bp.post("/notifications/read-all")
def mark_all_read():
    notifications.mark_read(g.user)
    return redirect(url_for(".index"))


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    if request.method == "POST":
        chosen = chosen_preferences(PreferencesForm())
        notifications.save_preferences(g.user, chosen)
        return redirect(url_for(".profile", notice="saved"))
    return profile_page()


def profile_page(status: int = 200, **context):
    """The profile page of the signed-in user; `context` adds a form's error (views.credentials)."""
    settings = current_app.config["POSTROOM_SETTINGS"]
    page = render_template(
        "profile.html",
        event_types=store.EVENT_TYPES,
        preferences=store.preferences_of([g.user.id])[g.user.id],
        followed=store.followed_projects(g.user.id),
        mail_enabled=mail_can_go_out(g.user.account_id, settings),
        digest_hour=settings.worker.digest_hour,
        notice=request.args.get("notice", ""),
        tokens=api_tokens(user_id=g.user.id),
        now=utcnow(),
        **context,
    )
    return page, status


@bp.post("/projects/<int:project_id>/follow")
def follow(project_id: int):
    """Follow (`follow=1`) or unfollow (`follow=0`) a project of the user's account."""
    sent = FollowForm()
    try:
        notifications.set_following(g.user, project_id, sent.follow.data)
    except NotFound:
        abort(404)
    fallback = url_for("projects.protocol", project_id=project_id)
    return redirect(_safe_next(sent.next.data, fallback))
