"""Correspondents: the distinct addresses and names of each account's entries, for from:/to:.

Frozen model copy as of this migration, like 0001; filled from the participants already stored.
"""

from peewee import CharField, ForeignKeyField, Model


def up(migrator, db):
    class Account(Model):
        class Meta:
            database = db
            table_name = "account"

    class Correspondent(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        address = CharField()
        name = CharField(default="")

        class Meta:
            database = db
            table_name = "correspondent"
            indexes = ((("account", "address", "name"), True),)

    db.create_tables([Correspondent])
    db.execute_sql(
        "INSERT INTO correspondent (account_id, address, name)"
        " SELECT DISTINCT entry.account_id, participant.address, participant.name"
        " FROM participant JOIN entry ON entry.id = participant.entry_id"
    )


def down(migrator, db):
    db.execute_sql("DROP TABLE correspondent")
