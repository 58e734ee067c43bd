"""Training of the three model families (pix2pix, CycleGAN, DAEGAN-style) on SynthRAD-layout data."""
