"""Entrocraft (Li et al., arXiv 2604.26326): entropy-curve control for LLM RL by advantage rejection sampling."""
