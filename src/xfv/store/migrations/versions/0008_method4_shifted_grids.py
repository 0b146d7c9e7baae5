"""Method 4 changed its design again (shifted grids of cells and a multi-scale fit, docs/faithfulness.md): its
stored maps are dropped. The viewer recomputes a pair's maps on demand, and ``xfv precompute`` recomputes the pairs
it selects (they no longer have all their rows).

Revision ID: 0008_method4_shifted_grids
Revises: 0007_faces_rates_upload_scales
"""

from alembic import op

revision = "0008_method4_shifted_grids"
down_revision = "0007_faces_rates_upload_scales"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM xmaps WHERE method = 4")


def downgrade() -> None:
    """The former method 4's maps cannot be rebuilt here; pairs without them are recomputed by precompute."""
