"""The shell's words: a command line split as ``sh`` would split it, for ``argv.py`` to judge.

Quotes, escapes, ``;``/``&&``/``|``/newline, subshells, ``$(...)``, backticks and process
substitutions (their text is returned to be read in turn), redirections (their targets are not
arguments), here-strings and here-documents (their text is what the command reads on stdin).
Nothing is expanded: a word that still holds ``$`` or a backtick is one the reader cannot know.
"""

from __future__ import annotations

Command = tuple[list[str], list[str]]  # (words, texts fed on stdin)


def parse(text: str) -> tuple[list[Command], list[str]]:
    """Commands (words, texts fed on stdin) and the texts of substitutions, as the shell splits them."""
    commands: list[Command] = [([], [])]
    nested: list[str] = []
    word: list[str] = []
    started = False
    redirect: str | None = None
    heredocs: list[tuple[str, bool, list[str]]] = []
    i, n = 0, len(text)

    def end() -> None:
        nonlocal word, started, redirect
        if started:
            value = "".join(word)
            if redirect is None:
                commands[-1][0].append(value)
            elif redirect == "<<<":
                commands[-1][1].append(value)
            elif redirect.startswith("<<"):
                heredocs.append((value, redirect.endswith("-"), commands[-1][1]))
            redirect = None
        word, started = [], False

    while i < n:
        c = text[i]
        if c in " \t":
            end()
            i += 1
        elif c == "\\":
            if text.startswith("\\\n", i):
                i += 2
                continue
            word.append(text[i + 1:i + 2])
            started, i = True, i + 2
        elif c == "'":
            j = text.find("'", i + 1)
            j = n if j < 0 else j
            word.append(text[i + 1:j])
            started, i = True, j + 1
        elif c == '"':
            i = _double_quoted(text, i + 1, word, nested)
            started = True
        elif text.startswith("$(", i) or c == "`":
            inner, i = _substitution(text, i)
            nested.append(inner)
            word.append("$(...)")
            started = True
        elif c == "#" and not started:
            i = n if text.find("\n", i) < 0 else text.find("\n", i)
        elif c in "<>":
            if started and "".join(word).isdigit():
                word, started = [], False
            end()
            j = i
            while j < n and text[j] in "<>&|-":
                j += 1
            op, i = text[i:j], j
            if op in ("<", ">") and text.startswith("(", i):  # process substitution
                inner, i = _balanced(text, i + 1)
                nested.append(inner)
            else:
                redirect = op
        elif c in ";&|()\n":
            end()
            i += 1
            if c == "\n" and heredocs:
                i = _read_heredocs(text, i, heredocs)
            if commands[-1][0] or commands[-1][1]:
                commands.append(([], []))
        else:
            word.append(c)
            started, i = True, i + 1
    end()
    return [c for c in commands if c[0]], nested


def _double_quoted(text: str, i: int, word: list[str], nested: list[str]) -> int:
    n = len(text)
    while i < n and text[i] != '"':
        if text[i] == "\\" and i + 1 < n:
            word.append(text[i + 1] if text[i + 1] in '$`"\\\n' else text[i:i + 2])
            i += 2
        elif text.startswith("$(", i) or text[i] == "`":
            inner, i = _substitution(text, i)
            nested.append(inner)
            word.append("$(...)")
        else:
            word.append(text[i])
            i += 1
    return i + 1


def _substitution(text: str, i: int) -> tuple[str, int]:
    if text[i] == "`":
        j = i + 1
        while j < len(text) and text[j] != "`":
            j += 2 if text[j] == "\\" else 1
        return text[i + 1:j], j + 1
    return _balanced(text, i + 2)


def _balanced(text: str, i: int) -> tuple[str, int]:
    """The text up to the ``)`` that closes the one before ``i``, and the index after it."""
    depth, j, quote = 1, i, ""
    while j < len(text):
        c = text[j]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[i:j], j + 1
        j += 2 if c == "\\" else 1
    return text[i:], len(text)


def _read_heredocs(text: str, i: int, pending: list[tuple[str, bool, list[str]]]) -> int:
    for delimiter, strip_tabs, into in pending:
        body: list[str] = []
        while i < len(text):
            j = text.find("\n", i)
            j = len(text) if j < 0 else j
            line, i = text[i:j], j + 1
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                break
            body.append(line)
        into.append("\n".join(body))
    pending.clear()
    return i
