"""Extractors: find the final answer in a completion. Named, chosen per task (EXTRACTORS).

All of them scan the whole completion (no length cut that could drop a late answer) and
take the *last* marker, since models restate and correct themselves before concluding.
They return the raw answer text; normalize.py cleans it.
"""

from __future__ import annotations

import re

from mathrl.verify.latex import command_argument
from mathrl.verify.prose import free_text, is_prose, last_math, spans

_GSM8K = re.compile(r"####\s*\$?\s*(-?[\d.,]*\d)")


def gsm8k(completion: str) -> str | None:
    """`#### N`, the rule of openai/grade-school-math (`#### (\\-?[0-9\\.\\,]+)`, commas dropped).

    Deviations: the reference takes the first match (`re.search`); we take the last, so a
    corrected final line wins. We also accept `#### $18` and drop a trailing period.
    Text after the number is fine (the bug that scored `#### 18 dollars` as 0).
    """
    pos = len(completion)
    while (i := completion.rfind("####", 0, pos)) >= 0:
        m = _GSM8K.match(completion, i)
        if m:
            return m.group(1).replace(",", "")
        pos = i
    return None


def _box_commands(completion: str):
    """(start, name length) of every `\\boxed` / `\\fbox`, last first; each rfind resumes
    where the previous one stopped, so the whole scan is linear."""
    b, f = completion.rfind("\\boxed"), completion.rfind("\\fbox")
    while b >= 0 or f >= 0:
        if b > f:
            yield b, len("\\boxed")
            b = completion.rfind("\\boxed", 0, b)
        else:
            yield f, len("\\fbox")
            f = completion.rfind("\\fbox", 0, f)


# Text allowed between boxes that together make one answer: `a = \\boxed{3}, b = \\boxed{4}`.
_BOX_JOINER = re.compile(
    r"(?:\s|[$,;&]|\\[()\[\]]|\\q?quad|\\\\|\\text\{\s*(?:and|or)?\s*\}|\b(?:and|or)\b"
    r"|\\?[A-Za-z]+(?:_\{?\w+\}?)?(?:\([^()]{0,12}\))?\s*=)*")
_MAX_JOINER_CHARS = 80
_MAX_JOINED = 16  # more boxes in a row than this are no one answer (and joining is linear work)


def _joined(between: str) -> bool:
    return len(between) <= _MAX_JOINER_CHARS and _BOX_JOINER.fullmatch(between) is not None


def boxed(completion: str) -> str | None:
    """Content of the last complete `\\boxed{...}` / `\\fbox{...}` (nested braces kept whole).

    Boxes that end the text separated only by commas, "and", "or" or `name =` are one answer
    (`x = \\boxed{2}, y = \\boxed{3}` -> `2, 3`); a box that repeats the one before it counts once.
    """
    stop, found, joined_from = len(completion), [], None
    for start, name_length in _box_commands(completion):
        arg = command_argument(completion, start + name_length, stop)
        if arg is None:
            # Truncated box: an earlier box still open here cannot close either, so later
            # scans stop at its start (keeps `\\boxed{` * 100,000 linear, not quadratic).
            stop = start
            if found:
                break
            continue
        if found and (len(found) >= _MAX_JOINED or not _joined(completion[arg[1]:joined_from])):
            break
        if arg[0].strip():
            found.append(arg[0].strip())
            joined_from = start
        elif found:
            break
        stop = start
    if not found:
        return None
    unique = list(dict.fromkeys(reversed(found)))
    return ", ".join(unique)


_ANSWER_IS = re.compile(r"answer is\s*:?\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")


_MAX_ANSWER_LINE = 4096  # the rest of a line after "answer is" longer than this is not an answer


def _answer_text(rest: str) -> str | None:
    """The answer that starts a line's remainder: a box if there is one, else up to the full
    stop; prose there ("the smallest $k$ is 7") is reduced to its last math item."""
    line = rest[:_MAX_ANSWER_LINE].split("\n", 1)[0]
    inner = boxed(line)
    if inner is not None:
        return inner
    end = _SENTENCE_END.search(line)
    answer = (line[: end.start()] if end else line).strip().strip("*").strip()
    if answer and is_prose(answer) or len(spans(answer)) > 1:
        answer = last_math(answer) or answer
    return answer or None


def answer_is(completion: str) -> str | None:
    """The text after the last "the answer is" (Minerva / lm-eval few-shot format)."""
    last = None
    for last in _ANSWER_IS.finditer(completion):
        pass
    return None if last is None else _answer_text(completion[last.end():])


_ANSWER_COLON = re.compile(
    r"^[ \t*#>_]*(?:[Ff]inal [Aa]nswer|[Aa]nswer|ANSWER|A)[ \t*]*:[ \t*]*(?=\S)", re.MULTILINE)


def answer_colon(completion: str) -> str | None:
    """The rest of the last line that starts with "Answer:", "Final Answer:" or "A:"."""
    last = None
    for last in _ANSWER_COLON.finditer(completion):
        pass
    return None if last is None else _answer_text(completion[last.end():])


# A digit run glued to a letter before it is part of a word (`QX7ZT`), not a number.
_NUMBER = re.compile(r"(?:(?<![\w.\-])-)?(?<![A-Za-z\d])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?"
                     r"|(?:(?<![\w.\-])-)?\.\d+")
_DIGIT = re.compile(r"\d")
_TAIL = 4096  # look at the end first; the whole text only when the end has no number


def last_number(completion: str) -> str | None:
    """The last number in the text (lm-eval's "flexible-extract"), thousands commas dropped."""
    for text in (completion[-_TAIL:], completion) if len(completion) > _TAIL else (completion,):
        if _DIGIT.search(text) is None:  # 1 MB without a digit: skip the slower number regex
            continue
        last = None
        for last in _NUMBER.finditer(text):
            pass
        # a number at the tail's very start may begin before the tail (12 cut to 2): read the whole text
        if last is not None and (text is completion or last.start() > 0):
            return last.group(0).replace(",", "")
    return None


def auto(completion: str) -> str | None:
    """The first of boxed, gsm8k, answer_is, answer_colon, free_text, last_number that finds one.

    Explicit markers beat phrases, phrases beat unmarked text: the whole completion when it is
    one expression, else its last math span or number (prose.py).
    """
    for extractor in (boxed, gsm8k, answer_is, answer_colon, free_text, last_number):
        answer = extractor(completion)
        if answer is not None:
            return answer
    return None


_WRAPPED = re.compile(r"\$|\\\(|\\\[|\\boxed|\\fbox|answer", re.IGNORECASE)


def unwrap(answer: str) -> str | None:
    """The answer inside an answer that carries wrappers or prose (`Answer: $12$`,
    `the smallest $k$ is 7`), or None when there is nothing to unwrap. For golds and
    already-extracted answers; never the `####` rule or a bare last number of plain text."""
    if _WRAPPED.search(answer) is None:
        return None
    for extractor in (boxed, answer_is, answer_colon, free_text):
        inner = extractor(answer)
        if inner is not None:
            return inner if inner != answer.strip() else None
    return None


EXTRACTORS = {"gsm8k": gsm8k, "boxed": boxed, "answer_is": answer_is, "answer_colon": answer_colon,
              "free_text": free_text, "last_number": last_number, "auto": auto}


def extract(completion: str, extractor: str = "auto") -> str | None:
    """The final answer found by the named extractor, or None."""
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; choose from {sorted(EXTRACTORS)}")
    return EXTRACTORS[extractor](completion)
