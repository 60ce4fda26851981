"""The team area: everyone sees the members; owners and admins add members and change them.

The rules (only an owner may hand out, take away or touch the owner role; no change may leave
the account without an active owner) are domain.users'; this view shows its refusals.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from admin_ui.forms import ActiveForm, MemberForm, RoleForm, refused_field
from admin_ui.i18n import translate_refusal
from domain import users
from domain.errors import DomainError, Forbidden, Invalid, NotFound
from domain.tokens import api_tokens, revoke_api_token
from storage.models import User, utcnow

bp = Blueprint("team", __name__)


# A refusal of domain.users as the code the template explains it by.
REFUSAL_CODES = {users.OWNER_ONLY: "owner_only", users.LAST_OWNER: "last_owner"}


def _members():
    return list(
        User.select()
        .where(User.account == g.user.account_id)
        .order_by(User.is_active.desc(), User.email)
    )


def _page(status: int = 200, **context):
    may_manage = users.may_manage_team(g.user)
    roles = users.roles_given_by(g.user)
    page = render_template(
        "team.html",
        members=_members(),
        may_manage=may_manage,
        roles=roles,
        notice=request.args.get("notice", ""),
        form=context.pop("form", {}),
        tokens=api_tokens(account_id=g.user.account_id) if may_manage else [],
        now=utcnow(),
        **context,
    )
    return page, status


def _require_manager() -> None:
    if not users.may_manage_team(g.user):
        abort(403)


@bp.get("/team")
def index():
    return _page()


@bp.post("/team/members")
def add_member():
    _require_manager()
    sent = MemberForm()
    form = sent.values()
    if not users.may_give_role(g.user, form["role"]):
        return _page(403, form=form, add_error_code="owner_only", add_error_fields=["role"])
    if not sent.validate():  # a field over MAX_MEMBER_FIELD_CHARS
        too_long = [name for name in form if sent[name].errors]
        return _page(400, form=form, add_error_code="too_long", add_error_fields=too_long)
    try:
        member = users.create_user(
            g.user.account_id,
            form["email"],
            form["role"],
            sent.password.data,
            name=form["name"],
            by=g.user,
        )
    except Forbidden:
        return _page(403, form=form, add_error_code="owner_only", add_error_fields=["role"])
    except DomainError as error:
        field = refused_field(error)
        return _page(
            400,
            form=form,
            add_error=translate_refusal(error),
            add_error_fields=[field] if field else [],
        )
    return redirect(url_for(".index", notice="added", member=member.id))


def _refused(error: DomainError, user_id: int | None = None, *, role: bool = False):
    """The team page with a refused change explained (404 for a member not in the account);
    a refused role is marked at that member's role field (`role_refused_id`)."""
    if isinstance(error, NotFound):
        abort(404)
    if isinstance(error, Invalid):
        abort(400)
    return _page(
        409,
        change_error_code=REFUSAL_CODES.get(str(error), "owner_only"),
        role_refused_id=user_id if role else None,
    )


@bp.post("/team/<int:user_id>/role")
def change_role(user_id: int):
    _require_manager()
    try:
        users.change_role(g.user.account_id, user_id, RoleForm().role.data, by=g.user)
    except DomainError as error:
        return _refused(error, user_id, role=True)
    return redirect(url_for(".index", notice="role-changed", member=user_id))


@bp.post("/team/<int:user_id>/active")
def set_active(user_id: int):
    _require_manager()
    active = ActiveForm().active.data
    try:  # ends their sessions and API tokens either way
        users.set_active(g.user.account_id, user_id, active, by=g.user)
    except DomainError as error:
        return _refused(error, user_id)
    notice = "reactivated" if active else "deactivated"
    return redirect(url_for(".index", notice=notice, member=user_id))


@bp.post("/team/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    """Revoke an API token of a member of this account (an owner's: only by an owner)."""
    _require_manager()
    try:
        token = revoke_api_token(token_id, by=g.user)
    except DomainError as error:
        return _refused(error)
    return redirect(url_for(".index", notice="token-revoked", member=token.user_id))
