"""Credentials that can be ended: a per-user generation for sessions, token expiry."""

from peewee import DateTimeField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("user", "auth_generation", IntegerField(default=0)),
        migrator.add_column("web_session", "auth_generation", IntegerField(default=0)),
        migrator.add_column("api_token", "expires_at", DateTimeField(null=True)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("api_token", "expires_at"),
        migrator.drop_column("web_session", "auth_generation"),
        migrator.drop_column("user", "auth_generation"),
    )
