"""Rules: one per entry of ``model_manager.policy.CATALOGUE``, plus the linter's own MM6xx rules,
which do not depend on the callee (their data, keyword and function names, also lives in policy.py).

Codes, messages and fix hints come from the catalogue. What needs more than the
catalogue's data (HTTP verbs on client objects, the argument carrying a URL,
the examples each rule is tested with) lives here and in ``examples.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mm_lint import signals
from model_manager import policy

# Codes of the checker's own findings (not from the catalogue).
SYNTAX_ERROR = "MM001"
DECODE_ERROR = "MM002"
INTERNAL_CODES = {
    SYNTAX_ERROR: "file does not parse: every rule is blind to it",
    DECODE_ERROR: "file is not valid text in its declared encoding",
}

# Methods of HTTP client objects that send a request, and where their URL sits.
HTTP_VERBS: dict[str, int] = {
    "get": 0, "post": 0, "put": 0, "patch": 0, "delete": 0, "head": 0, "options": 0,
    "stream": 1, "request": 1, "urlopen": 1, "open": 0, "ws_connect": 0, "send": 0,
    "request_encode_url": 1, "request_encode_body": 1, "connect": 0, "retrieve": 0,
}
URL_KWARGS = ("url", "fullurl", "host", "base_url")
# Module-level functions of HTTP libraries whose first positional is the method, not the URL.
METHOD_FIRST = ("requests.request", "httpx.request", "httpx.stream", "urllib3.request",
                "aiohttp.request")


#: A rule is its catalogue entry: codes, names, why and fix are never copied out of policy.py.
Rule = policy.ForbiddenCall

# The linter's own rules: signals in the code whatever the callee, and the project's own wrappers.
PRETRAINED_ANY = "MM601"
DOWNLOAD_NAME = "MM602"
WEIGHTS_URL = "MM603"
WRAPPER_CALL = "MM604"
_ANY = "any callee"
LINT_RULES: tuple[Rule, ...] = (
    Rule(PRETRAINED_ANY, _ANY, (),
         "A truthy `pretrained`/`pretrained_backbone`/`download`, or a weights enum (`weights=\"DEFAULT\"`, "
         "`*_Weights.IMAGENET1K_V1`), downloads pretrained weights whatever the function is.",
         "Pass pretrained=False / weights=None and load the prepared state dict by path."),
    Rule(DOWNLOAD_NAME, _ANY, (),
         "A function named like torch's and the hub's download helpers downloads wherever it is "
         "imported from (libraries re-export and wrap them under the same names).",
         "Prepare the file before the run and open it by path."),
    Rule(WEIGHTS_URL, _ANY, (),
         "A URL to a weights file (or a model-zoo scheme like torchvision://) passed to a call or "
         "kept in a config is downloaded by whatever receives it.",
         "Point the config at the prepared file's path."),
    Rule(WRAPPER_CALL, "this project", (),
         "This project's function downloads: from the parameter this call fills, or whatever its arguments.",
         "Pass a local path (or None/False) where it takes one, or prepare the file before the run."),
)


def message(rule: Rule, called: str, detail: str = "") -> str:
    extra = f" ({detail})" if detail else ""
    return f"{rule.code} `{called}`{extra}: {rule.why} Fix: {rule.fix}"


def title(rule: Rule) -> str:
    return f"{rule.library}: {rule.names[0]}" if rule.names else f"{rule.library}: {rule.code}"


def fix_kwarg(rule: Rule) -> policy.LocalWhen | None:
    """The keyword ``--fix`` may add, when the catalogue marks the rule autofixable."""
    if not rule.autofix or not rule.local_when:
        return None
    lw = rule.local_when[0]
    if lw.value in (policy.PATH, policy.LOOPBACK_URL):
        return None
    return lw


def _pattern_regex(pattern: str) -> str:
    parts = pattern.split(".")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "*":
            # A final ``*`` is one part (a builder of a module); an inner one is one or more
            # parts, so ``transformers.*.from_pretrained`` also covers classes imported
            # from submodules (``transformers.models.bert.BertModel``).
            out.append(r"[^.]+" if last else r"[^.]+(?:\.[^.]+)*")
        else:
            out.append(re.escape(part).replace(r"\*", r"[^.]*"))
    return r"\.".join(out)


@dataclass(frozen=True, slots=True)
class Match:
    rule: Rule
    via_instance: str | None  # HTTP verb called on an instance of a matched client class


class Matcher:
    """Qualified name -> rule, with a cache (the same few names recur everywhere)."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._exact: dict[str, Rule] = {}
        globs = []
        for rule in rules:
            for name in rule.names:
                if "*" in name:
                    globs.append((re.compile(_pattern_regex(name) + r"\Z"), rule))
                else:
                    self._exact.setdefault(name, rule)
        self._globs = tuple(globs)
        self._cache: dict[str, tuple[Match, ...]] = {}
        self.from_pretrained_rules = tuple(
            (rule, name.split(".", 1)[0]) for rule in rules for name in rule.names
            if name.endswith(".*.from_pretrained"))

    def _direct(self, qualname: str) -> list[Rule]:
        """Every rule naming ``qualname``: one call may break two (torchvision ``weights`` and
        ``weights_backbone`` are separate rules, and both must hold for the call to be local)."""
        found: list[Rule] = []
        exact = self._exact.get(qualname)
        if exact is not None:
            found.append(exact)
        for rx, rule in self._globs:
            if rule not in found and rx.match(qualname):
                found.append(rule)
        return found

    def match(self, qualname: str) -> Match | None:
        matches = self.match_all(qualname)
        return matches[0] if matches else None

    def match_all(self, qualname: str) -> tuple[Match, ...]:
        try:
            return self._cache[qualname]
        except KeyError:
            pass
        from mm_lint.names import canonical_forms

        found: tuple[Match, ...] = ()
        for q in canonical_forms(qualname):
            direct = self._direct(q)
            if direct:
                found = tuple(Match(rule, None) for rule in direct)
                break
            head, _, verb = q.rpartition(".")
            if head and verb in HTTP_VERBS:
                http = [rule for rule in self._direct(head) if rule.category == policy.HTTP]
                if http:
                    found = tuple(Match(rule, verb) for rule in http)
                    break
        self._cache[qualname] = found
        return found


def all_rules() -> tuple[Rule, ...]:
    """Every rule the checker reports, the catalogue's first."""
    return policy.CATALOGUE + LINT_RULES


@lru_cache(maxsize=1)
def by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in all_rules()}


@lru_cache(maxsize=1)
def matcher() -> Matcher:
    return Matcher(policy.CATALOGUE)


@lru_cache(maxsize=1)
def trigger_words() -> frozenset[str]:
    """Identifiers one of which a file must contain to be worth parsing."""
    # A call can only resolve to a catalogue name through an import of its module, so the
    # module names suffice; ``from_pretrained`` is added for receivers the checker cannot
    # resolve (a variable holding a model class).
    words: set[str] = {"from_pretrained"}
    for rule in policy.CATALOGUE:
        words.update(rule.modules)
        words.update(name.split(".", 1)[0] for name in rule.names)
    return frozenset(w for w in words if w.isidentifier())


@lru_cache(maxsize=1)
def name_prefixes() -> dict[str, tuple[str, ...]]:
    """Every proper dotted prefix of a catalogue name -> the remainders below it.

    ``torch`` -> ("hub.load", "load", ...): a file that binds ``torch`` can only reach
    the catalogue through ``torch.hub.load`` and its siblings.
    """
    out: dict[str, set[str]] = {}
    for rule in policy.CATALOGUE:
        for name in rule.names:
            parts = name.split(".")
            for i in range(1, len(parts)):
                head = ".".join(parts[:i])
                if "*" in head:
                    break
                out.setdefault(head, set()).add(".".join(parts[i:]))
    return {k: tuple(sorted(v)) for k, v in out.items()}


@lru_cache(maxsize=1)
def module_paths() -> frozenset[str]:
    """Dotted prefixes of catalogue names that name a module or class (``torch.hub``): binding one
    to a variable (``hub = torch.hub``) makes the variable an alias."""
    return frozenset(name_prefixes())


def catalogue_fingerprint() -> str:
    """Changes whenever the catalogue does (part of the cache key)."""
    import hashlib

    data = (policy.CATALOGUE, LINT_RULES, signals.PRETRAINED_KEYWORDS, signals.WEIGHTS_KEYWORDS,
            signals.WEIGHTS_ENUM_PATTERN, signals.DOWNLOAD_FUNCTION_NAMES, signals.WEIGHT_FILE_SUFFIXES,
            signals.MODEL_URL_SCHEMES, signals.REMOTE_URL_SCHEMES)
    return hashlib.sha256(repr(data).encode()).hexdigest()[:16]
