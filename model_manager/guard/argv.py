"""Read a command line the way the shell and the usual wrappers would, and say whether it reaches
the network: a download program, a shell or one-liner that opens sockets, or a program the
reader cannot know (a command word that is a variable).

One interpreter for the runtime guard (child-process events) and the linter's MM501. A word
given as ``None`` is one the caller could not read (the linter's non-literal arguments): it is
never judged, so only what is readable is refused. No reader can be complete (a script file, a
program renamed, a command fed on stdin): kernel mode is the answer for those. Standard library
only, besides the pure-data catalogue.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from model_manager import policy
from model_manager.guard.shellwords import parse

Word = str | None


@dataclass(frozen=True, slots=True)
class Finding:
    program: str     # "curl", "git clone", "$c", "perl"
    why: str = ""    # empty for a download program; else what the reader saw

    def describe(self) -> str:
        return f"`{self.program}`" + (f" ({self.why})" if self.why else "")


_DOWNLOAD = frozenset(policy.DOWNLOAD_PROGRAMS)
_MODULES = frozenset(policy.DOWNLOAD_MODULES)
_GIT_NET = frozenset(policy.GIT_NETWORK_SUBCOMMANDS)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "rbash", "yash", "posh",
                     "tcsh", "csh"})
_MULTICALL = frozenset({"busybox", "toybox"})
_PYTHONS = frozenset({"python", "pypy"})
_KEYWORDS = frozenset({"{", "}", "!", "if", "then", "else", "elif", "fi", "do", "done", "while", "until",
                       "coproc", "function"})
#: wrapper -> (options that take a value, positional words before the command)
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "env": (frozenset({"-u", "--unset", "-C", "--chdir", "-P"}), 0),
    "sudo": (frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group",
                        "--host", "--prompt", "--chdir", "--close-from", "--role", "--type", "--other-user"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "runuser": (frozenset({"-u", "-g", "-G", "--user", "--group", "--supp-group"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "--class", "--classdata"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0),
    "xargs": (frozenset({"-I", "-L", "-n", "-P", "-s", "-d", "-E", "-a", "--arg-file", "--delimiter",
                         "--max-args", "--max-procs", "--max-lines", "--max-chars", "--eof",
                         "--process-slot-var"}), 0),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "exec": (frozenset({"-a"}), 0),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "flock": (frozenset({"-w", "--timeout", "-E", "--conflict-exit-code"}), 1),
    "taskset": (frozenset(), 1),
    "chrt": (frozenset({"-T", "-P", "-D"}), 1),
    "strace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-P", "-S", "-X", "-O"}), 0),
    "ltrace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-a", "-n", "-l", "-x"}), 0),
    "parallel": (frozenset({"-j", "--jobs", "-S", "--sshlogin", "-a", "--arg-file", "--delay", "--timeout"}), 0),
    "systemd-run": (frozenset({"-p", "--property", "-u", "--unit", "-E", "--setenv", "--uid", "--gid",
                               "--slice", "-M", "--machine", "--description"}), 0),
    **{name: (frozenset(), 0) for name in ("nohup", "setsid", "command", "builtin", "chronic", "unbuffer",
                                           "firejail", "caffeinate", "catchsegv", "fakeroot", "nocache",
                                           "sg", "eatmydata")},
}
#: one-liner interpreters -> options whose value is code (c) or a module/library to load (m)
_ONE_LINERS: dict[str, dict[str, str]] = {
    "perl": {"-e": "c", "-E": "c", "-M": "m", "-m": "m"},
    "ruby": {"-e": "c", "-r": "m"},
    "node": {"-e": "c", "--eval": "c", "-p": "c", "--print": "c", "-r": "m", "--require": "m"},
    "nodejs": {"-e": "c", "--eval": "c", "-p": "c", "--print": "c", "-r": "m", "--require": "m"},
    "deno": {"eval": "c"}, "bun": {"-e": "c", "--eval": "c"},
    "php": {"-r": "c"}, "lua": {"-e": "c", "-l": "m"}, "luajit": {"-e": "c", "-l": "m"},
    "Rscript": {"-e": "c"}, "julia": {"-e": "c", "--eval": "c"}, "tclsh": {}, "osascript": {"-e": "c"},
}
_AWKS = frozenset({"awk", "gawk", "mawk", "nawk"})
_NET_CODE = re.compile(r"(?i)\b(sockets?|io::socket|lwp|https?2?|ftp|net::|net/(http|ftp|smtp)|open-uri|net|dgram|"
                       r"tls|fsockopen|stream_socket_client|curl|wget|fetch|xmlhttprequest|websocket|inet6?)\b|/inet6?/")
#: a Python one-liner opens sockets when it imports one of these (or names a URL, torch.hub, the hub)
_NET_MODULES = frozenset({"socket", "_socket", "ssl", "socketserver", "urllib", "urllib2", "urllib3", "http",
                          "httplib", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "poplib", "imaplib",
                          "nntplib", "telnetlib", "xmlrpc", "websocket", "websockets", "huggingface_hub", "pycurl",
                          "grpc", "tritonclient", "gdown", "wget", "pip", "asyncssh", "paramiko", "boto3"})
_PY_IMPORTS = re.compile(r"\bimport\s+([\w., ]+)|\bfrom\s+([\w.]+)\s+import\b|"
                         r"(?:__import__|import_module)\(\s*['\"]([\w.]+)")
_PY_CALLS = re.compile(r"\b(https?|ftp)://|\btorch\.hub\b|\bhf_hub_download\b|\bsnapshot_download\b")
_DEV_NET = re.compile(r"/dev/(tcp|udp)/")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_VERSION = re.compile(r"^(.+?)-?\d+(\.\d+)*$")
_GIT_VALUE_OPTS = frozenset({"-C", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--super-prefix",
                             "--list-cmds", "--attr-source"})
#: git config keys whose value is a command git runs (the key's last part)
_GIT_COMMAND_KEYS = re.compile(r"(?i)\.(fsmonitor|pager|editor|sshcommand|gitproxy|external|textconv|clean|"
                               r"smudge|process|helper|program|askpass|hook|command|cmd|tool)$|^pager\.")
_GIT_LOCAL = frozenset("""
add am annotate apply bisect blame branch bundle cat-file check-attr check-ignore check-mailmap
check-ref-format checkout checkout-index cherry cherry-pick citool clean commit commit-graph commit-tree
config count-objects describe diagnose diff diff-files diff-index diff-tree difftool fast-export
fast-import filter-branch fmt-merge-msg for-each-ref for-each-repo format-patch fsck gc get-tar-commit-id
grep hash-object help index-pack init interpret-trailers log ls-files ls-tree mailinfo mailsplit merge
merge-base merge-file merge-index merge-tree mergetool mktag mktree multi-pack-index mv name-rev notes
pack-objects pack-redundant pack-refs patch-id prune prune-packed range-diff read-tree rebase reflog
repack replace rerere reset restore rev-list rev-parse revert rm shortlog show show-branch show-index
show-ref sparse-checkout stage stash status stripspace switch symbolic-ref tag unpack-file unpack-objects
update-index update-ref update-server-info var verify-commit verify-pack verify-tag version whatchanged
worktree write-tree gui gitk instaweb
""".split())  # noqa: SIM905
_MAX_DEPTH = 8


def base(word: str) -> str:
    """The program's name: basename, then without a version suffix (``pip3.11`` -> ``pip``)."""
    name = word.rstrip("/").rsplit("/", 1)[-1]
    match = _VERSION.match(name)
    return match.group(1) if match and match.group(1) not in ("", "-") else name


def scan_argv(argv: Sequence[Word], executable: Word = None) -> Finding | None:
    """A command given as words (no shell). ``executable``: what actually runs, when it differs
    from ``argv[0]`` (``Popen(..., executable=)``, the path ``os.exec*`` gets)."""
    words = list(argv)
    if executable is not None and words and words[0] is not None and base(executable) != base(words[0]):
        found = _command([executable, *words[1:]], 0)
        if found is not None:
            return found
    if not words and executable is not None:
        words = [executable]
    return _command(words, 0)


def scan_shell(command: str, depth: int = 0) -> Finding | None:
    """A command line for ``sh -c``: every command of it, every substitution, every here-document."""
    if depth > _MAX_DEPTH:
        return Finding("sh", "commands nested too deeply to read")
    if _DEV_NET.search(command):
        return Finding("/dev/tcp", "a shell redirection to /dev/tcp or /dev/udp opens a socket")
    commands, nested = parse(command)
    for inner in nested:  # first: `$(curl x)` is better named by what it runs
        found = scan_shell(inner, depth + 1)
        if found is not None:
            return found
    for words, stdin in commands:
        found = _command(list(words), depth + 1)
        if found is None and stdin:
            found = _stdin(words, stdin, depth + 1)
        if found is not None:
            return found
    return None


def _command(words: list[Word], depth: int) -> Finding | None:
    if depth > _MAX_DEPTH:
        return Finding("sh", "commands nested too deeply to read")
    while words and words[0] is not None and (_ASSIGN.match(words[0]) or words[0] in _KEYWORDS):
        words = words[1:]
    if not words or words[0] is None or not words[0]:
        return None
    first, rest = words[0], words[1:]
    if "$" in first or "`" in first:
        return Finding(first, "the program is a variable or a substitution: the reader cannot know it")
    prog, name = first.rstrip("/").rsplit("/", 1)[-1], base(first)
    if prog in _DOWNLOAD or name in _DOWNLOAD:
        return Finding(prog)
    if name in _MULTICALL:
        return _command(rest, depth + 1)
    if name in _WRAPPERS or name in ("su", "script", "watch", "eval", "alias", "find"):
        return _wrapper(name, rest, depth)
    if name in _SHELLS:
        return _shell(rest, depth)
    if name == "git":
        return _git(rest, depth)
    if name in _PYTHONS:
        return _python(prog, rest)
    if name in _ONE_LINERS:
        return _one_liner(prog, _ONE_LINERS[name], rest)
    if name in _AWKS:
        return _awk(prog, rest)
    if name == "openssl" and rest and rest[0] in ("s_client", "s_time", "ocsp"):
        return Finding(f"openssl {rest[0]}")
    return None


def _options(words: list[Word], takes_value: frozenset[str]) -> list[Word] | None:
    """The words after a wrapper's options (None: an option the caller could not read)."""
    i = 0
    while i < len(words):
        word = words[i]
        if word is None:
            return None
        if word == "--":
            return words[i + 1:]
        if not word.startswith("-") or word == "-":
            break
        i += 2 if word in takes_value else 1
    return words[i:]


def _wrapper(name: str, rest: list[Word], depth: int) -> Finding | None:
    if name in ("eval", "watch"):
        if name == "watch":
            rest = _options(rest, frozenset({"-n", "--interval", "-d", "--differences", "-q", "--equexit"})) or []
        if any(w is None for w in rest):
            return None
        return scan_shell(" ".join(w for w in rest if w is not None), depth + 1)
    if name == "alias":
        for word in rest:
            if word is not None and "=" in word:
                found = scan_shell(word.partition("=")[2], depth + 1)
                if found is not None:
                    return found
        return None
    if name == "find":
        for i, word in enumerate(rest):
            if word in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next((j for j in range(i + 1, len(rest)) if rest[j] in (";", "+")), len(rest))
                found = _command(rest[i + 1:end], depth + 1)
                if found is not None:
                    return found
        return None
    for flag in ("-c", "--command", "--session-command"):  # su, runuser, script, flock: a shell command
        if flag in rest and name in ("su", "runuser", "script", "flock"):
            value = rest[rest.index(flag) + 1] if rest.index(flag) + 1 < len(rest) else None
            return scan_shell(value, depth + 1) if value is not None else None
    if name in ("su", "script"):
        return None  # a login shell or a typescript: no command given
    if name == "command" and any(w in ("-v", "-V") for w in rest):
        return None  # only looks the program up
    takes_value, positional = _WRAPPERS[name]
    words = _options(rest, takes_value)
    if words is None:
        return None
    if name == "env":
        for i, word in enumerate(rest):
            if word is not None and (word in ("-S", "--split-string") or word.startswith("--split-string=")):
                attached = "=" in word
                value = word.partition("=")[2] if attached else (rest[i + 1] if i + 1 < len(rest) else None)
                if value is None:
                    return None
                return _command([*shlex.split(value), *rest[i + (1 if attached else 2):]], depth + 1)
        while words and words[0] is not None and "=" in words[0] and not words[0].startswith("="):
            words = words[1:]
    if name == "parallel":
        words = words[:next((i for i, w in enumerate(words) if w in (":::", "::::", ":::+")), len(words))]
    return _command(words[positional:], depth + 1)


def _shell(rest: list[Word], depth: int) -> Finding | None:
    i, has_c = 0, False
    while i < len(rest):
        word = rest[i]
        if word is None:
            return None
        if word in ("--", "-"):
            i += 1
            break
        if word == "--command":  # fish --command CMD
            command = rest[i + 1] if i + 1 < len(rest) else None
            return scan_shell(command, depth + 1) if command is not None else None
        if word.startswith("--command="):
            return scan_shell(word.partition("=")[2], depth + 1)
        if word.startswith("--"):
            i += 2 if word in ("--rcfile", "--init-file") else 1
            continue
        if word[:1] in "-+" and len(word) > 1:
            has_c = has_c or (word[0] == "-" and "c" in word[1:])
            i += 2 if ("o" in word[1:] or "O" in word[1:]) else 1
            continue
        break
    if not has_c:
        return None  # a script file or stdin: the reader cannot see it
    command = rest[i] if i < len(rest) else None
    return scan_shell(command, depth + 1) if command is not None else None


def _git(rest: list[Word], depth: int) -> Finding | None:
    aliases: dict[str, str] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word is None:
            return None
        if word in _GIT_VALUE_OPTS:
            i += 2
            continue
        if word in ("-c", "--config-env") or word.startswith("--config-env="):
            setting = rest[i + 1] if word in ("-c", "--config-env") and i + 1 < len(rest) else word.partition("=")[2]
            i += 2 if word in ("-c", "--config-env") else 1
            if setting is None:
                return None
            key, _, value = setting.partition("=")
            if key.lower().startswith("alias."):
                aliases[key[6:]] = value
            elif value and _GIT_COMMAND_KEYS.search(key):
                found = scan_shell(value.removeprefix("!"), depth + 1)
                if found is not None:
                    return found
            continue
        if word.startswith("-"):
            i += 1
            continue
        break
    if i >= len(rest) or rest[i] is None:
        return None
    sub = rest[i]
    assert sub is not None
    if sub in aliases:
        body = aliases[sub]
        if body.startswith("!"):
            return scan_shell(body[1:], depth + 1)
        first = body.split()[0] if body.split() else ""
        return Finding(f"git {sub}", f"an alias for `git {first}`") if first in _GIT_NET else None
    if sub in _GIT_NET:
        return None if _git_local_action(sub, rest[i + 1:]) else Finding(f"git {sub}")
    if sub in _GIT_LOCAL:
        return None
    return Finding(f"git {sub}", f"an alias or an external git-{sub}: the reader cannot see what it runs")


def _git_local_action(sub: str, args: list[Word]) -> bool:
    """``git remote -v``, ``git lfs version``, bare ``git submodule``; an unknown word reaches the remote."""
    actions = policy.GIT_LOCAL_ACTIONS.get(sub)
    if actions is None:
        return False
    for j, word in enumerate(args):
        if word is None or word not in actions:
            return False
        if not word.startswith("-"):
            later = args[j + 1:]
            return word != "add" or not any(w is None or w in policy.GIT_FETCH_OPTIONS for w in later)
    return True  # no action at all: lists the remotes or submodules, or prints lfs's help


def _python(prog: str, rest: list[Word]) -> Finding | None:
    i = 0
    while i < len(rest):
        word = rest[i]
        if word is None or not word.startswith("-") or word in ("-", "--"):
            return None  # a script, stdin, or unreadable: the reader cannot see it
        if word.startswith("--"):
            i += 1
            continue
        for j, letter in enumerate(word[1:], start=1):
            if letter in "cmWX":
                value = word[j + 1:] or (rest[i + 1] if i + 1 < len(rest) else None)
                if value is None:
                    return None
                if letter == "c":
                    return Finding(prog, "a one-liner that opens sockets") if _python_net(value) else None
                if letter == "m":
                    return Finding(value.partition(".")[0]) if value.partition(".")[0] in _MODULES else None
                i += 0 if word[j + 1:] else 1
                break
        i += 1
    return None


def _python_net(code: str) -> bool:
    for match in _PY_IMPORTS.finditer(code):
        names = (match.group(1) or "").split(",") + [match.group(2) or "", match.group(3) or ""]
        if any(n.strip().split(" ")[0].partition(".")[0] in _NET_MODULES for n in names if n.strip()):
            return True
    return _PY_CALLS.search(code) is not None


def _one_liner(prog: str, options: dict[str, str], rest: list[Word]) -> Finding | None:
    for i, word in enumerate(rest):
        if word is None:
            continue
        for option, kind in options.items():
            value: Word = None
            if word == option:
                value = rest[i + 1] if i + 1 < len(rest) else None
            elif option.startswith("-") and not option.startswith("--") and word.startswith(option) \
                    and len(word) > len(option):
                value = word[len(option):]
            elif len(option) == 2 and word.startswith("-") and not word.startswith("--") \
                    and option[1] in word[1:] and kind == "c" and word.endswith(option[1]):
                value = rest[i + 1] if i + 1 < len(rest) else None  # perl -ne, -lne: combined flags
            if value is not None and _NET_CODE.search(value):
                what = "a one-liner that opens sockets" if kind == "c" else f"loads {value}"
                return Finding(prog, what)
    return None


def _awk(prog: str, rest: list[Word]) -> Finding | None:
    program = _options(rest, frozenset({"-F", "-v", "-f", "--file", "--assign", "--field-separator"}))
    if program and program[0] is not None and "/inet" in program[0]:
        return Finding(prog, "gawk's /inet special files open sockets")
    return None


def _stdin(words: list[str], texts: list[str], depth: int) -> Finding | None:
    """What a shell or interpreter reads from a here-document or here-string."""
    name = base(next((w for w in words if not _ASSIGN.match(w)), ""))
    for body in texts:
        if name in _SHELLS:
            found = scan_shell(body, depth + 1)
        elif name in _PYTHONS:
            found = Finding(name, "a script on stdin that opens sockets") if _python_net(body) else None
        elif name in _ONE_LINERS:
            found = Finding(name, "a script on stdin that opens sockets") if _NET_CODE.search(body) else None
        else:
            found = None
        if found is not None:
            return found
    return None


# The guard loads this module on the first child process it judges: sealed now, as the others at import.
from model_manager.guard import integrity  # noqa: E402

integrity.seal_module(sys.modules[__name__])
