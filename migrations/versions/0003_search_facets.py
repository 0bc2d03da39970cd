"""search facets: a fourth full-text column with the values filters narrow by

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FTS = ("CREATE VIRTUAL TABLE segment_text USING fts5(name, folder, tags, facets, "
       "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
FTS_0002 = ("CREATE VIRTUAL TABLE segment_text USING fts5(name, folder, tags, "
            "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")


def upgrade() -> None:
    # an FTS5 table cannot gain a column: make it anew and refill it from the library (the
    # delete trigger on segment names the table, so it keeps working)
    op.execute("DROP TABLE IF EXISTS segment_text")
    op.execute(FTS)
    from loopmind.library.textindex import rebuild_all
    rebuild_all(op.get_bind())


def downgrade() -> None:
    # keep the three word columns as they are; only the facets go
    op.execute("ALTER TABLE segment_text RENAME TO segment_text_0003")
    op.execute(FTS_0002)
    op.execute("INSERT INTO segment_text (rowid, name, folder, tags) "
               "SELECT rowid, name, folder, tags FROM segment_text_0003")
    op.execute("DROP TABLE segment_text_0003")
