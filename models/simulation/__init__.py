"""Paired training data: digital anatomy, tissue properties and CT/MR/CBCT/PET simulators.

Submodules: :mod:`.tissues` (labels and literature tables), :mod:`.anatomy` with
:mod:`.anatomy_head` and :mod:`.anatomy_pelvis` (random head and pelvis label maps), :mod:`.fields`
(smooth random fields), :mod:`.ct` and :mod:`.mr` (image simulators), :mod:`.cbct` and :mod:`.pet`
(acquisition physics), :mod:`.dataset` (SynthRAD-layout writer), :mod:`.loader` (reader),
:mod:`.cli` (``radtranslate simulate``), :mod:`.figures` (documentation panels).
See docs/simulation.md.
"""
