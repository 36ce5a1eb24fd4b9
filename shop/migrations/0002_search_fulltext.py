"""Full-text search beside shop_searchentry, in each backend's own way.

PostgreSQL: a generated tsvector column (name weighted above description)
with a GIN index. SQLite: an FTS5 table whose rowid is the product id, kept
in step with shop_searchentry by triggers, so the ORM writes one table and
both stay consistent inside the same transaction.
"""

from django.db import migrations

POSTGRES_FORWARD = [
    """
    ALTER TABLE shop_searchentry ADD COLUMN document tsvector
    GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(name, '')), 'A')
        || setweight(to_tsvector('english', coalesce(description, '')), 'B')
        || setweight(to_tsvector('simple', coalesce(code, '')), 'A')
    ) STORED
    """,
    "CREATE INDEX shop_searchentry_document ON shop_searchentry USING GIN (document)",
]
POSTGRES_BACKWARD = ["ALTER TABLE shop_searchentry DROP COLUMN document"]

SQLITE_FORWARD = [
    """
    CREATE VIRTUAL TABLE shop_searchentry_fts USING fts5(
        code, name, description, tokenize = 'porter unicode61'
    )
    """,
    """
    CREATE TRIGGER shop_searchentry_fts_insert AFTER INSERT ON shop_searchentry
    BEGIN
        INSERT INTO shop_searchentry_fts (rowid, code, name, description)
        VALUES (new.product_id, new.code, new.name, new.description);
    END
    """,
    """
    CREATE TRIGGER shop_searchentry_fts_update AFTER UPDATE ON shop_searchentry
    BEGIN
        DELETE FROM shop_searchentry_fts WHERE rowid = old.product_id;
        INSERT INTO shop_searchentry_fts (rowid, code, name, description)
        VALUES (new.product_id, new.code, new.name, new.description);
    END
    """,
    """
    CREATE TRIGGER shop_searchentry_fts_delete AFTER DELETE ON shop_searchentry
    BEGIN
        DELETE FROM shop_searchentry_fts WHERE rowid = old.product_id;
    END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER shop_searchentry_fts_delete",
    "DROP TRIGGER shop_searchentry_fts_update",
    "DROP TRIGGER shop_searchentry_fts_insert",
    "DROP TABLE shop_searchentry_fts",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
