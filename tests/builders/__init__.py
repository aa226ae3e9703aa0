"""Builders for tests, by noun; the common ones (accounts, members, plans) are in tests/factories.py."""
