"""Errors the CLI maps to exit codes: a bad input is exit 2 with one line, anything else exit 1."""


class UserInputError(ValueError):
    """Bad input from the user (a file, an option, a value): reported as one line, exit code 2."""
