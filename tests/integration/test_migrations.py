from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from mutualaid.db.models import Base
from mutualaid.db.schema import alembic_config, current_revision


def test_an_empty_database_upgraded_to_head_matches_the_models(engine: Engine) -> None:
    # The session's `engine` fixture built this database from empty with `alembic upgrade head`.
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(engine) == head
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_form_a_single_line_of_history() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1


def test_log_leaves_are_indexed_by_hash_and_by_subject(engine: Engine) -> None:
    # Issue 20: the leaf-hash lookup is a hash index on PostgreSQL (0021), a B-tree on SQLite.
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'log_entries'"
        else:
            query = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'log_entries'"
        indexes = {name: definition for name, definition in connection.execute(text(query))}
    hash_index = indexes["ix_log_entries_leaf_hash"]
    assert "(leaf_hash)" in hash_index
    assert ("USING hash" in hash_index) == (engine.dialect.name == "postgresql")
    assert "(subject_type, subject_ref)" in indexes["ix_log_entries_subject"]
