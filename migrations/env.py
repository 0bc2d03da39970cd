"""Alembic environment. LoopMind runs the migrations itself when a library is opened
(``loopmind.library.db``); ``alembic upgrade head`` from the repository also works and
targets the library in ``LOOPMIND_HOME`` (or the platform data folder)."""

from alembic import context
from sqlalchemy import create_engine

from loopmind.library import models  # noqa: F401  (registers the tables)
from sqlmodel import SQLModel

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    from loopmind.config import get_settings

    url = config.get_main_option("sqlalchemy.url") or f"sqlite:///{get_settings().db_path}"
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from loopmind.config import get_settings

        url = config.get_main_option("sqlalchemy.url") or f"sqlite:///{get_settings().db_path}"
        engine = create_engine(url)
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=target_metadata,
                              render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
