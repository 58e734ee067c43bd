"""The ``radtranslate`` command line."""
