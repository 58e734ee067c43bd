"""radtranslate export package."""
