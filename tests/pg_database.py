"""A PostgreSQL database of a test's own on the server at 127.0.0.1:5432, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("XIAOCHENG_TEST_PG_URL", "postgresql+psycopg://@127.0.0.1:5432/test")


@contextmanager
def fresh_database(prefix: str) -> Iterator[tuple[str, sa.Engine, str]]:
    """Create a database named ``prefix_<random>``; yield (its URL, an admin engine, its name).

    Fails (does not skip) when the server is not reachable. The database is dropped
    at the end even if a test left it refusing connections.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({exc.orig}); start it")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False), admin, name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
