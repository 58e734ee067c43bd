"""radtranslate models package."""
