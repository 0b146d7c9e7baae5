"""Each result names the calibration behind its threshold and C-Score (``results.calibration``).

Rows stored before this revision have NULL there; ``xfv precompute`` recomputes such results (from the embedding
cache), so that a small dataset is judged with the shipped benchmark calibration and says so.

Revision ID: 0003_result_calibration
Revises: 0002_maps
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_result_calibration"
down_revision = "0002_maps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("calibration", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("calibration")
