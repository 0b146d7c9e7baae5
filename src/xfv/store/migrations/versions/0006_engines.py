"""Results and uploaded pairs name the engine that computed their embeddings (``results.engine``,
``uploads.engine``: runtime, provider, precision and threads, e.g. ``onnxruntime 1.32.0 CPUExecutionProvider, fp32,
2 threads``; now ``cpu fp32 (onnxruntime ..., 2 threads)``). Rows stored before this revision have NULL there: they were computed by onnxruntime's CPU provider
in fp32, the only engine before it. (X-Maps name it in their ``options`` JSON, which needs no new column.)

Revision ID: 0006_engines
Revises: 0005_upload_faces
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_engines"
down_revision = "0005_upload_faces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("results", "uploads"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("engine", sa.String(300), nullable=True))


def downgrade() -> None:
    for table in ("results", "uploads"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("engine")
