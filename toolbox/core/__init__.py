"""Shared machinery: native-kernel dispatch, references, RNG, executor, configuration and run-folder I/O."""
