"""Persistent state of the gateway: SQLAlchemy 2 over SQLite (WAL) or PostgreSQL."""
