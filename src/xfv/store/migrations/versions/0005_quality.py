"""Quality-aware confidence: per image and model a model-based quality (``image_qualities``), the C-Score variant
behind each stored confidence (``results.cscore``), and an uploaded pair's qualities and note (``uploads``).

Rows stored before this revision have no quality and a NULL variant (the paper's C-Score); ``xfv precompute``
computes the qualities (and refits) when it next runs on a dataset.

Revision ID: 0005_quality
Revises: 0004_method4_coalitions
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_quality"
down_revision = "0004_method4_coalitions"
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
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("cscore", sa.String(20), nullable=True))
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("cscore", sa.String(20), nullable=True))
        batch.add_column(sa.Column("quality1", sa.Float(), nullable=True))
        batch.add_column(sa.Column("quality2", sa.Float(), nullable=True))
        batch.add_column(sa.Column("quality_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        for column in ("quality_note", "quality2", "quality1", "cscore"):
            batch.drop_column(column)
    with op.batch_alter_table("results") as batch:
        batch.drop_column("cscore")
    op.drop_index("ix_image_qualities_model_quality", table_name="image_qualities")
    op.drop_table("image_qualities")
