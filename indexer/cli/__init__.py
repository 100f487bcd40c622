"""The ``newsarchive`` command line: a thin layer over the package's API, one module per command group."""
