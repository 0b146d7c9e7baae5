"""What the platform needs to be read without surprises: which detector found each face of a result (a face that
was not found is flagged wherever its pair appears), the X-Map cost measured per model (the viewer's estimate
before a map job starts), and the patch-size maps of uploaded pairs.

- ``results.face1`` / ``results.face2``: the detector that found the face in the model's pipeline (``hog``,
  ``cnn``, ``yunet``, ...; ``centre`` when none did and the centre of the photo was compared). NULL on rows from
  before: ``xfv precompute`` recomputes such results (from the embedding cache, detecting the faces again).
- ``models.passes_per_second`` / ``models.rate_measured_at``: forward passes per second of the model's last X-Map
  job run on this installation.
- ``upload_xmaps.scale``: 0 the final map, else the patch size (as ``xmaps.scale``).

Revision ID: 0007_faces_rates_upload_scales
Revises: 0006_engines
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_faces_rates_upload_scales"
down_revision = "0006_engines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD / DROP COLUMN (SQLite >= 3.35 has both): a batch copy of "models" would drop the
    # table, and SQLite's ON DELETE CASCADE would take every result and map with it. "upload_xmaps" is referenced
    # by nothing, so its constraint is changed by a batch copy.
    op.add_column("results", sa.Column("face1", sa.String(10), nullable=True))
    op.add_column("results", sa.Column("face2", sa.String(10), nullable=True))
    op.add_column("models", sa.Column("passes_per_second", sa.Float(), nullable=True))
    op.add_column("models", sa.Column("rate_measured_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("upload_xmaps") as batch:
        batch.add_column(sa.Column("scale", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_upload_xmaps_upload_method_image", type_="unique")
        batch.create_unique_constraint("uq_upload_xmaps_upload_method_image_scale",
                                       ["upload_id", "method", "image", "scale"])


def downgrade() -> None:
    op.execute("DELETE FROM upload_xmaps WHERE scale <> 0")
    with op.batch_alter_table("upload_xmaps") as batch:
        batch.drop_constraint("uq_upload_xmaps_upload_method_image_scale", type_="unique")
        batch.create_unique_constraint("uq_upload_xmaps_upload_method_image", ["upload_id", "method", "image"])
        batch.drop_column("scale")
    for table, column in (("models", "rate_measured_at"), ("models", "passes_per_second"), ("results", "face2"),
                          ("results", "face1")):
        op.drop_column(table, column)
