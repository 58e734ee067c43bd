"""Paired training data: digital anatomy, tissue properties and CT/MR/CBCT/PET simulators.

Submodules: :mod:`.tissues` (labels and literature tables), :mod:`.anatomy` (random head and
pelvis label maps), :mod:`.ct` and :mod:`.mr` (image simulators), :mod:`.dataset` (SynthRAD-layout
writer and loader), :mod:`.cli` (``radtranslate simulate``).
"""
