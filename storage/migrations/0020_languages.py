"""account.language and user.language: the language the UI (and later its mail) speaks.

account.language is the account's language (chosen first on the setup page, an owner changes
it in Settings); accounts made before have 'en', what every page spoke until now.
user.language overrides it for one user (the profile); NULL: the account's.
"""


def up(migrator, db):
    if "language" not in {c.name for c in db.get_columns("account")}:
        db.execute_sql(
            "ALTER TABLE account ADD COLUMN \"language\" VARCHAR(255) NOT NULL DEFAULT 'en'"
        )
    if "language" not in {c.name for c in db.get_columns("user")}:
        db.execute_sql('ALTER TABLE "user" ADD COLUMN "language" VARCHAR(255)')


def down(migrator, db):
    db.execute_sql('ALTER TABLE "user" DROP COLUMN "language"')
    db.execute_sql('ALTER TABLE account DROP COLUMN "language"')
