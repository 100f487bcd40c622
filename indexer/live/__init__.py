"""A live archive: feeds it follows (:mod:`.feeds`), fetched and indexed in rounds (:mod:`.follow`)."""
