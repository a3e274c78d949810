"""toolbox: eight papers about entropy change as pipelines, with C++/CUDA kernels and numpy/torch references.

The library never imports the CLI (typer, rich); heavy dependencies load inside the functions that need them.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
