"""Alembic environment: runs on the connection that ``xfv.store.db.migrate`` hands over."""

from alembic import context

from xfv.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through xfv.store.db.migrate(engine), which passes the connection.")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
