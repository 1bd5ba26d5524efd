"""Built-in task specs (one YAML per task, plus small generator hooks).

This folder ships inside the wheel as the package `mathrl.builtin_tasks` (see pyproject's
`package-dir`); `mathrl.tasks.builtin_tasks_dir()` finds it either way. Hooks are loaded from
their file path by the task loader, never imported through this package.
"""
