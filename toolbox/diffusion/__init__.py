"""Nonequilibrium thermodynamics of generative diffusion (Yu & Huang, PRE 2025) with the speciation and collapse
regimes of Biroli, Bonnaire, de Bortoli & Mezard: the `toolbox sample-diffusion` pipeline."""
