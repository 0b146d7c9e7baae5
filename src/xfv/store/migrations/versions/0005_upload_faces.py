"""Each uploaded pair records what detection found in its photos (``uploads.faces``: how many faces in each, and
the notes the page shows, e.g. that the largest of three was used).

Rows stored before this revision have NULL there (nothing was recorded; the pages say nothing).

Revision ID: 0005_upload_faces
Revises: 0004_method4_coalitions
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_upload_faces"
down_revision = "0004_method4_coalitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("faces", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("faces")
