"""radtranslate runtime: volumes, DICOM/NIfTI I/O, inference, validation, gRPC, CLI.

This package never imports torch or monai.
"""

from service.volume import Modality, SourceSeries, Unit, Volume

__all__ = ["Modality", "SourceSeries", "Unit", "Volume"]
__version__ = "0.1.0"
