"""The course's helpers (``docs/``): the exercise checkers, and the Clever Hans experiment."""
