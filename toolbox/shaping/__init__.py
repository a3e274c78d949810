"""Reward shaping via a diffusion process (Kumar 2023, arXiv 2306.11885), reconstructed: `toolbox shape-reward`."""
