"""Persistence: SQLAlchemy 2.x models, queries and Alembic migrations."""
