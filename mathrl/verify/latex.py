"""Brace-level LaTeX helpers shared by extraction and normalisation.

Both need "the balanced group that starts here"; a regex cannot match nested braces, and a
greedy one silently returns the wrong group on `\\boxed{\\frac{1}{2}}`.
"""

from __future__ import annotations

import re


_BRACE_EVENTS = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped pair, or a brace


def closing_brace(text: str, open_at: int, stop: int | None = None) -> int | None:
    """Index of the `}` matching the `{` at text[open_at], or None if it is not closed
    before `stop` (default: the end). Escaped braces (`\\{`, as in `\\boxed{\\{1,2\\}}`)
    do not count. Runs at regex speed: only braces and backslashes are visited.
    """
    depth = 0
    for m in _BRACE_EVENTS.finditer(text, open_at, len(text) if stop is None else stop):
        token = m.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def command_argument(text: str, start: int, stop: int | None = None) -> tuple[str, int] | None:
    """The argument of a command whose name ends at `start`: `{...}` or one bare token.

    Returns (argument, index after it). `\\boxed 5` (MATH writes this) takes the bare token.
    """
    i, n = start, len(text)
    while i < n and text[i] == " ":
        i += 1
    if i >= n:
        return None
    if text[i] == "{":
        end = closing_brace(text, i, stop)
        return None if end is None else (text[i + 1 : end], end + 1)
    if start == i:  # `\\boxed5` is not LaTeX (`\\boxed5` would be a command name)
        return None
    m = re.compile(r"[^\s$]+").match(text, i)
    return (m.group(0), m.end()) if m else None


def unwrap_commands(text: str, names: tuple[str, ...]) -> str:
    """Replace every `\\name{content}` by `content`, nested ones included.

    Iterative, not recursive: the nesting depth of untrusted text is not bounded yet.
    """
    pattern = re.compile(r"\\(?:" + "|".join(names) + r")\s*\{")
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if m is None:
            return text
        end = closing_brace(text, m.end() - 1)
        if end is None:
            return text
        text = text[: m.start()] + text[m.end() : end] + text[end + 1 :]
        pos = m.start()
