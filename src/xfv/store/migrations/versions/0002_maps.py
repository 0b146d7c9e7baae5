"""X-Maps per patch size: a ``scale`` column (0: the final multi-scale map) in the maps' unique key.

Rows already stored are final maps (scale 0); their float32 ``.npy`` blobs stay readable beside the compact
format of ``xfv.store.maps``.

Revision ID: 0002_maps
Revises: 0002_tasks_uploads (both were written as 0002 in parallel; this one follows)
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_maps"
down_revision = "0002_tasks_uploads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("xmaps") as batch:
        batch.add_column(sa.Column("scale", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_xmaps_pair_model_method_image", type_="unique")
        batch.create_unique_constraint("uq_xmaps_pair_model_method_image_scale",
                                       ["pair_id", "model_id", "method", "image", "scale"])


def downgrade() -> None:
    op.execute("DELETE FROM xmaps WHERE scale <> 0")
    with op.batch_alter_table("xmaps") as batch:
        batch.drop_constraint("uq_xmaps_pair_model_method_image_scale", type_="unique")
        batch.create_unique_constraint("uq_xmaps_pair_model_method_image", ["pair_id", "model_id", "method", "image"])
        batch.drop_column("scale")
