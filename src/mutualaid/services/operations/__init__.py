"""Operations: what the operator runs to keep a deployment alive, beside the plan's own use cases.

Owns backups and restores (`backup.py`): a backup folder holds a consistent copy of the database
(PostgreSQL through `pg_dump`, SQLite through the online backup API; `database_dumps.py`), the
encrypted evidence files as they are, and a manifest with the SHA-256 and size of every file; keys
are never in it. A restore verifies every hash before it writes anything and only fills an empty
database and an empty evidence folder. Use cases: create_backup, verify_backup, restore_backup
(backup.py); dump_database, database_revision, ensure_database_empty, restore_database
(database_dumps.py).
"""
