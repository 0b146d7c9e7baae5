"""Quality-aware confidence: per image and model a model-based quality (``image_qualities``), the C-Score variant
behind each stored confidence (``results.cscore``), and an uploaded pair's qualities and note (``uploads``).

Rows stored before this revision have no quality and a NULL variant (the paper's C-Score); ``xfv precompute``
computes the qualities (and refits) when it next runs on a dataset.

Revision ID: 0009_quality
Revises: 0008_method4_shifted_grids
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_quality"
down_revision = "0008_method4_shifted_grids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_qualities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("measure", sa.String(40), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.UniqueConstraint("image_id", "model_id", name="uq_image_qualities_image_model"),
    )
    op.create_index("ix_image_qualities_model_quality", "image_qualities", ["model_id", "quality"])
    # Plain ALTER TABLE ... ADD / DROP COLUMN (as 0007): a batch copy of "uploads" would drop the table, and
    # SQLite's ON DELETE CASCADE would take the uploads' maps with it.
    op.add_column("results", sa.Column("cscore", sa.String(20), nullable=True))
    op.add_column("uploads", sa.Column("cscore", sa.String(20), nullable=True))
    op.add_column("uploads", sa.Column("quality1", sa.Float(), nullable=True))
    op.add_column("uploads", sa.Column("quality2", sa.Float(), nullable=True))
    op.add_column("uploads", sa.Column("quality_note", sa.Text(), nullable=True))


def downgrade() -> None:
    for column in ("quality_note", "quality2", "quality1", "cscore"):
        op.drop_column("uploads", column)
    op.drop_column("results", "cscore")
    op.drop_index("ix_image_qualities_model_quality", table_name="image_qualities")
    op.drop_table("image_qualities")
