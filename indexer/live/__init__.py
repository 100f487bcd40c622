"""A live archive: feeds it follows (:mod:`.feeds`), fetched and indexed in rounds (:mod:`.follow`), and alerts
that watch what comes in (:mod:`.alerts`, with their Atom files: :mod:`.atom`)."""
