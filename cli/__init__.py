"""The `toolbox` command line (installed as toolbox.cli; the library never imports it)."""
