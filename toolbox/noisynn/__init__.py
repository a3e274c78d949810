"""NoisyNN (Yu et al., arXiv 2309.10625): noise injection into a hidden layer, task entropy, and a leak audit.

Modules: `noise` (the four noises and the hook that injects them), `kernels` (batch mixing and per-sample keyed
noise, native C++/CUDA with torch/numpy references), `entropy` (closed-form and Gaussian task entropies),
`models` (a small CNN and ViT), `data` (offline datasets), `train`, `stats`, `study` (`toolbox train-noisy`) with
`report` and `checkpoint`, `audit` (`toolbox audit-noisy`) and `demo`.
"""
