"""Bringing an index written by an earlier newsarchive up to this one's schema, without embedding anything again.

An upgrade writes a new generation, like any update: readers keep the old one until it is complete. Articles read
from URLs or from feeds that have since dropped them stay, which a rebuild from the files would lose.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from . import duplicates, layout
from .errors import NewsarchiveError
from .manifest import DATABASE, LEXICAL, MANIFEST, SCHEMA_VERSION, UPGRADABLE_FROM, VECTORS, Manifest
from .store import Store, connect, schema

# Version 4 added articles.author, articles.story_id and the duplicates table; the other files are unchanged.
_FROM_3 = (
    "ALTER TABLE articles ADD COLUMN author VARCHAR",
    "ALTER TABLE articles ADD COLUMN story_id VARCHAR",
    "UPDATE articles SET story_id = article_id",
    "ALTER TABLE articles ALTER COLUMN story_id SET NOT NULL",
)


def upgrade(directory: Path) -> bool:
    """Upgrade the current generation in ``directory`` if it is of a version this one can upgrade; use inside
    :func:`layout.writing`. Returns whether it did.

    Raises:
        NewsarchiveError: The upgraded index would not pass ``check``; the index is unchanged.
    """
    from .check import check_generation
    from .vectors import VectorIndex

    current = layout.current(directory)
    if current is None or not (current / MANIFEST).exists():
        return False
    manifest = Manifest.read(current)
    if manifest.schema_version not in UPGRADABLE_FROM:
        return False
    with layout.staging(directory) as staging:
        shutil.copy2(current / DATABASE, staging / DATABASE)
        shutil.copy2(current / VECTORS, staging / VECTORS)
        shutil.copytree(current / LEXICAL, staging / LEXICAL)
        with connect(staging / DATABASE, read_only=False) as db:
            for statement in _FROM_3:
                db.execute(statement).fetchall()
            store = Store(db)
            db.execute(schema(store.dimension)).fetchall()  # creates only what is missing: the duplicates table
            passage_ids = [row[0] for row in db.execute("SELECT passage_id FROM passages").fetchall()]
            duplicates.update(store, VectorIndex.load(staging / VECTORS), passage_ids)
        dataclasses.replace(manifest, schema_version=SCHEMA_VERSION).save(staging)
        problems = check_generation(staging)
        if problems:
            raise NewsarchiveError(f"cannot upgrade {directory}/: {'; '.join(problems)}; rebuild it with --rebuild")
        layout.publish(directory, staging)
    return True
