"""Technology landscape (Nazari & Weiss, arXiv:2501.13252): topic models, expert aspects, entropy shifts and RL
topic selection over a dated corpus. The CLI command is `toolbox map-landscape`; see docs/landscape.md."""
