"""Tasks and uploaded pairs of the web app, kept across restarts: tasks, uploads, upload_xmaps.

Revision ID: 0002_tasks_uploads
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_tasks_uploads"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_tasks_key_state", "tasks", ["key", "state"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("face1", sa.LargeBinary(), nullable=False),
        sa.Column("face2", sa.LargeBinary(), nullable=False),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("prediction", sa.String(10), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("calibration", sa.String(200), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_uploads_created_at", "uploads", ["created_at"])
    op.create_table(
        "upload_xmaps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("upload_id", sa.String(32), sa.ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("method", sa.Integer(), nullable=False),
        sa.Column("image", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("upload_id", "method", "image", name="uq_upload_xmaps_upload_method_image"),
    )


def downgrade() -> None:
    op.drop_table("upload_xmaps")
    op.drop_index("ix_uploads_created_at", table_name="uploads")
    op.drop_table("uploads")
    op.drop_index("ix_tasks_key_state", table_name="tasks")
    op.drop_table("tasks")
