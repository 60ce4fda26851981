"""account.time_zone and user.time_zone: the IANA zone dates are shown and filtered in.

account.time_zone is the account's zone (asked at setup, an owner changes it in Settings);
accounts made before have 'UTC', what every date meant until now. user.time_zone overrides it
for one user (the profile); NULL: the account's. Stored dates stay naive UTC.
"""


def up(migrator, db):
    if "time_zone" not in {c.name for c in db.get_columns("account")}:
        db.execute_sql(
            "ALTER TABLE account ADD COLUMN \"time_zone\" VARCHAR(255) NOT NULL DEFAULT 'UTC'"
        )
    if "time_zone" not in {c.name for c in db.get_columns("user")}:
        db.execute_sql('ALTER TABLE "user" ADD COLUMN "time_zone" VARCHAR(255)')


def down(migrator, db):
    db.execute_sql('ALTER TABLE "user" DROP COLUMN "time_zone"')
    db.execute_sql('ALTER TABLE account DROP COLUMN "time_zone"')
