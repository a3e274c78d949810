"""Importing this module installs the Entrocraft hooks into verl (`verl_adapter.install()`).

For verl's own entry point, whose trainer runs in a Ray actor: `VERL_USE_EXTERNAL_MODULES=toolbox.entrocraft.verl_plugin`
makes every process that imports verl import this module.
"""
from toolbox.entrocraft.verl_adapter import install

install()
