"""search: embeddings' embedder, duplicate fingerprints, vector log, full-text index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# text rows are keyed by segment id; kept by loopmind.library.textindex in the same
# transaction as the segment writes (tokenizing file names needs Python)
FTS = ("CREATE VIRTUAL TABLE segment_text USING fts5(name, folder, tags, "
       "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")

TRIGGERS = [
    # every change that can alter a segment's vector or whether it is searchable
    """CREATE TRIGGER vector_log_insert AFTER INSERT ON segment BEGIN
         INSERT INTO vector_log (segment_id) VALUES (new.id); END""",
    """CREATE TRIGGER vector_log_update AFTER UPDATE OF embedding ON segment BEGIN
         INSERT INTO vector_log (segment_id) VALUES (new.id); END""",
    """CREATE TRIGGER vector_log_delete AFTER DELETE ON segment BEGIN
         INSERT INTO vector_log (segment_id) VALUES (old.id);
         DELETE FROM segment_text WHERE rowid = old.id; END""",
    """CREATE TRIGGER vector_log_status AFTER UPDATE OF status ON audio_file
         WHEN old.status IS NOT new.status BEGIN
         INSERT INTO vector_log (segment_id) SELECT id FROM segment WHERE file_id = new.id; END""",
    # not a vector change, but a change of what filters see: the log's head is then a stamp
    # for everything a cached filter result depends on
    """CREATE TRIGGER vector_log_user AFTER UPDATE OF user_role, user_key, user_bpm ON segment
         BEGIN INSERT INTO vector_log (segment_id) VALUES (new.id); END""",
    """CREATE TRIGGER vector_log_path AFTER UPDATE OF path ON audio_file
         WHEN old.path IS NOT new.path BEGIN
         INSERT INTO vector_log (segment_id) SELECT id FROM segment WHERE file_id = new.id; END""",
]


def upgrade() -> None:
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('embedder', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=True))
        batch_op.add_column(sa.Column('fingerprint', sa.LargeBinary(), nullable=True))
    # filters spell "coalesce(user_x, x) = v" as "user_x = v OR (user_x IS NULL AND x = v)",
    # which SQLite answers from two indexes instead of a scan
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.create_index('ix_segment_user_role', ['user_role'])
        batch_op.create_index('ix_segment_user_key', ['user_key'])
        batch_op.create_index('ix_segment_user_bpm', ['user_bpm'])
    op.create_table('vector_log',
                    sa.Column('seq', sa.Integer(), nullable=False),
                    sa.Column('segment_id', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('seq'))
    op.execute(FTS)
    for t in TRIGGERS:
        op.execute(t)
    # a library made before search gets its text rows from 0003, which makes the table anew
    # with the columns today's loopmind.library.textindex writes (vectors come with
    # re-analysis, which ANALYSIS_VERSION 2 triggers on the next scan)


def downgrade() -> None:
    for name in ("vector_log_insert", "vector_log_update", "vector_log_delete",
                 "vector_log_status", "vector_log_user", "vector_log_path"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS segment_text")
    op.drop_table('vector_log')
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.drop_index('ix_segment_user_role')
        batch_op.drop_index('ix_segment_user_key')
        batch_op.drop_index('ix_segment_user_bpm')
        batch_op.drop_column('fingerprint')
        batch_op.drop_column('embedder')
