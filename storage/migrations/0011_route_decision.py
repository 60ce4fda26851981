"""Routing decisions in columns: entry.route_rule and entry.route_detail (domain.routing).

An entry keeps why it is where it is as a rule (domain.routing.Rule) and the one fact the
rule names; domain.routing.explain puts them into words. Entries filed before get the rule
"legacy" and keep the sentence they had (route_reason) as their detail, shown as it was;
nothing reads that sentence. The route_reason column stays (older writers, such as
bench/search.py, still fill it); nothing reads it any more.
"""

ENTRY_COLUMNS = (
    "\"route_rule\" VARCHAR(255) NOT NULL DEFAULT 'legacy'",
    "\"route_detail\" VARCHAR(255) NOT NULL DEFAULT ''",
)


def up(migrator, db):
    present = {c.name for c in db.get_columns("entry")}
    for column in ENTRY_COLUMNS:
        if column.split('"')[1] not in present:
            db.execute_sql(f"ALTER TABLE entry ADD COLUMN {column}")
    db.execute_sql("UPDATE entry SET route_detail = route_reason WHERE route_rule = 'legacy'")


def down(migrator, db):
    for column in ("route_detail", "route_rule"):
        db.execute_sql(f'ALTER TABLE entry DROP COLUMN "{column}"')
