"""ISES (Meng & Lucas, CoG 2024, arXiv 2407.21178): a framework for single-player deduction games, Information Set
Entropy Search and its sampled variant, SO-ISMCTS and reference agents, on a C++ information-set engine."""
