"""The team area: everyone sees the members; owners and admins add members and change them.

Rules beyond "owner or admin": only an owner may hand out, take away or touch the owner role,
and no change may leave the account without an active owner.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from postroom.auth import ROLES, AuthError, api_tokens, create_user, revoke_api_token
from postroom.auth import set_active as set_user_active
from storage.db import is_postgres, write_transaction
from storage.models import Account, ApiToken, User, utcnow

bp = Blueprint("team", __name__)

MANAGERS = ("owner", "admin")
MAX_FIELD_CHARS = 200
MAX_ID = 2**63 - 1


class TeamRuleError(Exception):
    """A change is refused; args[0] is a code the template explains."""


def _members():
    return list(
        User.select()
        .where(User.account == g.user.account_id)
        .order_by(User.is_active.desc(), User.email)
    )


def _page(status: int = 200, **context):
    may_manage = g.user.role in MANAGERS
    roles = ROLES if g.user.role == "owner" else tuple(r for r in ROLES if r != "owner")
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
    if g.user.role not in MANAGERS:
        abort(403)


def _lock_team() -> None:
    """Serialise team changes of the account until commit (inside write_transaction).

    SQLite's write transaction already holds the database's write lock; on PostgreSQL the
    account row is the lock, so two owners demoting each other cannot both see a second owner.
    """
    if is_postgres():
        Account.select(Account.id).where(Account.id == g.user.account_id).for_update().execute()


def _member_or_404(user_id: int) -> User:
    if user_id > MAX_ID:  # would overflow SQLite's INTEGER
        abort(404)
    member = User.get_or_none((User.id == user_id) & (User.account == g.user.account_id))
    if member is None:
        abort(404)
    return member


def _active_owner_count() -> int:
    owners = (User.account == g.user.account_id) & (User.role == "owner")
    return User.select().where(owners & (User.is_active == True)).count()  # noqa: E712


def _check_change(member: User, *, role: str, active: bool) -> None:
    """Raise TeamRuleError unless the logged-in user may give member this role and state."""
    touches_owner = "owner" in (member.role, role)
    if touches_owner and g.user.role != "owner":
        raise TeamRuleError("owner_only")
    steps_down = member.role == "owner" and member.is_active and not (role == "owner" and active)
    if steps_down and _active_owner_count() <= 1:
        raise TeamRuleError("last_owner")


@bp.get("/team")
def index():
    return _page()


@bp.post("/team/members")
def add_member():
    _require_manager()
    form = {key: request.form.get(key, "").strip() for key in ("email", "name", "role")}
    if form["role"] == "owner" and g.user.role != "owner":
        return _page(403, form=form, add_error_code="owner_only")
    if any(len(value) > MAX_FIELD_CHARS for value in form.values()):
        return _page(400, form=form, add_error_code="too_long")
    try:
        with write_transaction():
            _lock_team()
            member = create_user(
                g.user.account_id,
                form["email"],
                form["role"],
                request.form.get("password", ""),
                name=form["name"],
            )
    except AuthError as error:
        return _page(400, form=form, add_error=str(error))
    return redirect(url_for(".index", notice="added", member=member.id))


@bp.post("/team/<int:user_id>/role")
def change_role(user_id: int):
    _require_manager()
    role = request.form.get("role", "")
    if role not in ROLES:
        abort(400)
    try:
        with write_transaction():
            _lock_team()
            member = _member_or_404(user_id)
            _check_change(member, role=role, active=member.is_active)
            member.role = role
            member.save(only=[User.role])  # never a stale copy of auth_generation
    except TeamRuleError as refused:
        return _page(409, change_error_code=refused.args[0], changed_id=user_id)
    return redirect(url_for(".index", notice="role-changed", member=user_id))


@bp.post("/team/<int:user_id>/active")
def set_active(user_id: int):
    _require_manager()
    active = request.form.get("active") == "1"
    try:
        with write_transaction():
            _lock_team()
            member = _member_or_404(user_id)
            _check_change(member, role=member.role, active=active)
            set_user_active(member, active)  # ends their sessions and API tokens either way
    except TeamRuleError as refused:
        return _page(409, change_error_code=refused.args[0], changed_id=user_id)
    notice = "reactivated" if active else "deactivated"
    return redirect(url_for(".index", notice=notice, member=user_id))


@bp.post("/team/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    """Revoke an API token of a member of this account (an owner's: only by an owner)."""
    _require_manager()
    if token_id > MAX_ID:
        abort(404)
    token = (
        ApiToken.select(ApiToken, User)
        .join(User)
        .where((ApiToken.id == token_id) & (User.account == g.user.account_id))
        .first()
    )
    if token is None:
        abort(404)
    if token.user.role == "owner" and g.user.role != "owner":
        return _page(409, change_error_code="owner_only")
    revoke_api_token(token.id)
    return redirect(url_for(".index", notice="token-revoked", member=token.user_id))
