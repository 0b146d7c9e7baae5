"""Method 4 changed its definition (random coalitions of cells instead of single-patch occlusions, and no
per-patch-size maps): its stored maps are dropped. The viewer recomputes a pair's maps on demand, and
``xfv precompute`` recomputes the pairs it selects (they no longer have all their rows).

Revision ID: 0004_method4_coalitions
Revises: 0003_result_calibration
"""

from alembic import op

revision = "0004_method4_coalitions"
down_revision = "0003_result_calibration"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM xmaps WHERE method = 4")


def downgrade() -> None:
    """The former method 4's maps cannot be rebuilt here; pairs without them are recomputed by precompute."""
