"""Built-in comparison suites (one YAML per suite; see mathrl/compare.py for the format).

This folder ships inside the wheel as the package `mathrl.builtin_evals` (see pyproject's
`package-dir`); `mathrl.compare.builtin_evals_dir()` finds it either way.
"""
