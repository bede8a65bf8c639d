"""mm-lint's precision and recall on the second corpus (issue #11), from hand-labelled random samples.

    .venv/bin/python bench/measure_recall.py [--linter-root DIR] [--findings JSON] [--save-findings JSON]
                                             [--show-missing] [--add-missing] [-v] [--by-pattern]

Corpus: ``bench/fetch_corpus2.sh`` into ``.corpus2/src`` (fetched when missing). Labels:
``bench/corpus2_labels.json``, keyed ``package/relative/path.py:line``, each
``{"download": true|false, "reason": "...", "kind": "recall"|"precision"}`` (``download: null`` = still to label;
true recall sites also carry ``"class"``: issue #11's class 1-6 of the site, ``catalogued`` for a catalogue API
called directly, or ``other``). ``kind`` records the sample that first needed the label; a label serves both.

Recall sample. Candidates are every line of the corpus that one of ``PATTERNS`` matches (a grep), leaving out
what cannot run: comment lines, string statements (docstrings), import statements, and the name in a ``def``/
``class`` line. Each candidate gets a fixed pseudo-random priority (sha256 of seed and key); the sample is the
candidates in priority order up to the one that brings the count of lines labelled a true download site to
``--recall-n`` (100). Every candidate before that point must be labelled. A labelled site counts as found when
mm-lint reports an MM1xx-MM8xx finding in the same file on that line, or anywhere within the innermost call
expression (``ast.Call``, first to last line) that contains the line: the finding and the site are then one
call, e.g. ``hf_hub_download(`` on one line and ``repo_id=...`` labelled on the next.

Precision sample. Every distinct (file, line) that has at least one MM1xx-MM8xx finding (several findings on
one line are one unit) gets the same kind of fixed priority; the sample is the ``--precision-n`` (100) lowest.
Because the priority depends only on the key, a re-run after the rules change keeps every old finding line that
is still reported and still low enough, and asks only for the new ones (``--show-missing``/``--add-missing``).

Labelling rule (see bench/CORPUS2.md): a line is a download site when the code, run as written or with the
arguments its callers pass in normal use, fetches model weights, data or any other remote resource (network
request to a non-loopback host, a download program in a subprocess). A URL literal of weights or data that is
passed to or stored for a downloading call counts; a URL in a docstring, a log message or a citation does not.
A function that takes a name-or-path (``from_pretrained(name)``) counts unless the value is provably local.
For precision, MM204 (``torch.load``) is true only with an explicit ``weights_only=False`` (issue #11: torch
2.6 defaults to ``weights_only=True``; such a load is not a download either way).

Both figures come with 95 % Wilson score intervals. The report also gives per-rule counts, MM001/MM002 counts
and whether the linter crashed (a traceback, or an exit status other than 0/1) on the whole corpus.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".corpus2"
SRC = CORPUS / "src"
FETCH = ROOT / "bench" / "fetch_corpus2.sh"
LABELS = ROOT / "bench" / "corpus2_labels.json"
SEED = "corpus2-v1"
# Download and network rules: every code but the checker's own (MM0xx) and the licence checks (MM9xx).
RULE_RE = re.compile(r"^MM[1-8]\d\d$")

# Candidate true download sites: a grep, wide on purpose (labels sort it out).
PATTERNS: tuple[str, ...] = (
    r"from_pretrained\(",
    r"\bpretrained(?:_backbone)?\s*=\s*True",
    r"\bweights(?:_backbone)?\s*=\s*['\"](?:DEFAULT|IMAGENET\w*)['\"]",
    r"load_state_dict_from_url\(", r"\bload_url\(", r"download_url_to_file\(", r"hf_hub_download\(",
    r"snapshot_download\(", r"cached_download\(", r"cached_path\(", r"cached_file\(", r"load_file_from_url\(",
    r"attempt_download\w*\(",
    r"urlretrieve\(", r"urlopen\(", r"\brequests\.(?:get|post|put|head|request|Session)\(", r"\bhttpx\.\w+\(",
    r"\baiohttp\.\w+\(", r"\burllib3\.\w+\(",
    r"download\w*\(", r"\bget_file\(", r"\bretrieve\(", r"\.fetch\(", r"\bgdown\.\w+\(", r"\bwget\.\w+\(",
    r"['\"](?:wget|curl)['\"]",
    r"\bload_dataset\(", r"\bhub\.load\(", r"torch\.hub\.\w+\(", r"\bhub\.KerasLayer\(",
    r"https?://[^\s'\"]+\.(?:pth|pt|bin|onnx|safetensors|ckpt|h5|tflite|zip|tar|gz|tgz|npz|pkl|model)\b",
    r"git clone|['\"]clone['\"]|lfs pull",
    r"\bload_checkpoint\(",
)
CANDIDATE_RE = re.compile("|".join(f"(?:{p})" for p in PATTERNS))
# Every pattern needs one of these substrings: a cheap test before the regex (the alternation is slow).
WORDS: tuple[str, ...] = (
    "pretrained", "weights", "load_url", "download", "cached_", "from_url", "urlopen", "requests.",
    "httpx.", "aiohttp.", "urllib3.", "get_file(", "retrieve(", ".fetch(", "gdown.", "wget", "curl",
    "load_dataset(", "hub.", "http", "clone", "lfs pull", "load_checkpoint(",
)


def has_word(text: str) -> bool:
    return any(w in text for w in WORDS)
DEF_NAME_RE = re.compile(r"^\s*(?:async\s+def|def|class)\s+\w+")


# ---------------------------------------------------------------------------------------------- statistics
def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float, float]:
    """(estimate, low, high) of a proportion k/n with the Wilson score interval."""
    if n == 0:
        return float("nan"), 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return p, max(0.0, centre - half), min(1.0, centre + half)


def priority(key: str) -> str:
    return hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()


def fmt_ci(k: int, n: int) -> str:
    p, lo, hi = wilson(k, n)
    return f"{k}/{n} = {100 * p:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)"


# ---------------------------------------------------------------------------------------------- the corpus
@dataclass
class SourceFile:
    lines: list[str]
    tree: ast.AST | None
    _calls: list[tuple[int, int]] | None = field(default=None, repr=False)

    def calls(self) -> list[tuple[int, int]]:
        if self._calls is None:
            self._calls = [] if self.tree is None else [
                (n.lineno, n.end_lineno or n.lineno) for n in ast.walk(self.tree) if isinstance(n, ast.Call)]
        return self._calls

    def call_span(self, line: int) -> tuple[int, int]:
        """The innermost call expression containing ``line``, else the line itself."""
        best = (line, line)
        width = math.inf
        for a, b in self.calls():
            if a <= line <= b and b - a < width:
                best, width = (a, b), b - a
        return best


_files: dict[str, SourceFile] = {}


def split_lines(text: str) -> list[str]:
    """Lines as Python (ast, tokenize) numbers them: not str.splitlines, which also splits at \\f, \\x1c, ..."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def source(rel: str) -> SourceFile:
    if rel not in _files:
        text = (SRC / rel).read_bytes().decode("utf-8", "replace")
        try:
            tree: ast.AST | None = ast.parse(text)
        except (SyntaxError, ValueError):
            tree = None
        _files[rel] = SourceFile(split_lines(text), tree)
    return _files[rel]


def not_code_lines(tree: ast.AST | None) -> set[int]:
    """Lines of string statements (docstrings) and import statements."""
    out: set[int] = set()
    if tree is None:
        return out
    for node in ast.walk(tree):
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(
            node.value.value, str)
        if is_doc or isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return out


def candidates() -> list[str]:
    """Keys of every grep candidate line in the corpus."""
    out: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_bytes().decode("utf-8", "replace")
        if not has_word(text):
            continue
        hits = [i for i, line in enumerate(split_lines(text), 1)
                if has_word(line) and not line.lstrip().startswith("#")
                and CANDIDATE_RE.search(DEF_NAME_RE.sub("", line, count=1))]
        if hits:
            rel = path.relative_to(SRC).as_posix()
            skip = not_code_lines(source(rel).tree)
            out.extend(f"{rel}:{i}" for i in hits if i not in skip)
    return out


# ---------------------------------------------------------------------------------------------- the linter
@dataclass
class LintRun:
    findings: list[dict[str, object]]
    returncode: int
    stderr: str
    seconds: float
    linter_root: str
    commit: str


def git_commit(root: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "mm_lint",
                                "model_manager"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted mm_lint/model_manager changes" if dirty else "")


def run_linter(linter_root: Path, jobs: str) -> LintRun:
    """``python -m mm_lint --format json --no-cache`` over the corpus with ``linter_root``'s code.

    The settings are a fixed ``[tool.mm-lint]`` with ``exclude = []`` (as bench/bench_lint.py does), not the
    repository's: an exclude of ``.corpus2`` there (so that ``mm-lint .`` skips the corpus) or of ``dist``/
    ``build`` folders must not drop corpus files from the measurement; every other key keeps its default.
    """
    cfg = CORPUS / "mm-lint-config" / "pyproject.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[tool.mm-lint]\nexclude = []\n")
    env = dict(os.environ, PYTHONPATH=str(linter_root))
    cmd = [sys.executable, "-m", "mm_lint", "--config", str(cfg), "--format", "json", "--no-cache", "--exit-zero",
           "--statistics", "--jobs", jobs, str(SRC)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=linter_root, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    try:
        findings = json.loads(proc.stdout) if proc.stdout.strip() else []
    except json.JSONDecodeError:
        findings = []
    for f in findings:
        p = Path(str(f["path"]))
        if not p.is_absolute():
            p = linter_root / p
        f["path"] = Path(os.path.relpath(p.resolve(), SRC.resolve())).as_posix()
    return LintRun(findings, proc.returncode, proc.stderr, seconds, str(linter_root), git_commit(linter_root))


# ---------------------------------------------------------------------------------------------- the labels
def load_labels() -> dict[str, dict[str, object]]:
    if LABELS.exists():
        data: dict[str, dict[str, object]] = json.loads(LABELS.read_text())
        return data
    return {}


def save_labels(labels: dict[str, dict[str, object]]) -> None:
    def order(key: str) -> tuple[str, int]:
        path, _, line = key.rpartition(":")
        return path, int(line)

    LABELS.write_text(json.dumps({k: labels[k] for k in sorted(labels, key=order)}, indent=1) + "\n")


def labelled(labels: dict[str, dict[str, object]], key: str) -> bool | None:
    value = labels.get(key, {}).get("download")
    return value if isinstance(value, bool) else None


@dataclass
class Sample:
    keys: list[str]            # the sample, in priority order (labelled ones)
    missing: list[str]         # keys that need a label before the sample is complete
    complete: bool


def recall_sample(cands: list[str], labels: dict[str, dict[str, object]], want: int, extra: int) -> Sample:
    ordered = sorted(cands, key=priority)
    keys: list[str] = []
    missing: list[str] = []
    positives = 0
    for key in ordered:
        label = labelled(labels, key)
        if label is None:
            missing.append(key)
            if len(missing) >= extra:
                break
            continue
        if missing:     # beyond the first gap: only a (labelled) look-ahead, not in the sample yet
            continue
        keys.append(key)
        positives += label
        if positives >= want:
            break
    return Sample(keys, missing, positives >= want and not missing)


def precision_sample(finding_keys: list[str], labels: dict[str, dict[str, object]], want: int) -> Sample:
    ordered = sorted(set(finding_keys), key=priority)[:want]
    missing = [k for k in ordered if labelled(labels, k) is None]
    return Sample([k for k in ordered if k not in missing], missing, not missing)


def context(key: str, before: int = 6, after: int = 4) -> str:
    rel, _, line_s = key.rpartition(":")
    line = int(line_s)
    lines = source(rel).lines
    lo, hi = max(1, line - before), min(len(lines), line + after)
    return "\n".join(f"{'>' if i == line else ' '}{i:6d}  {lines[i - 1][:160]}" for i in range(lo, hi + 1))


# ---------------------------------------------------------------------------------------------- the report
def report(run: LintRun, cands: list[str], labels: dict[str, dict[str, object]], args: argparse.Namespace) -> str:
    out: list[str] = []
    w = out.append
    rules = [f for f in run.findings if RULE_RE.match(str(f["code"]))]
    by_line: dict[str, list[dict[str, object]]] = {}
    for f in rules:
        by_line.setdefault(f"{f['path']}:{f['line']}", []).append(f)
    lines_by_file: dict[str, set[int]] = {}
    for f in rules:
        lines_by_file.setdefault(str(f["path"]), set()).add(int(str(f["line"])))

    def found(key: str) -> bool:
        rel, _, line_s = key.rpartition(":")
        have = lines_by_file.get(rel, set())
        line = int(line_s)
        if line in have:
            return True
        a, b = source(rel).call_span(line)
        return any(a <= x <= b for x in have)

    n_files = sum(1 for _ in SRC.rglob("*.py"))
    codes = Counter(str(f["code"]) for f in run.findings)
    crashed = run.returncode not in (0, 1) or "Traceback" in run.stderr
    w(f"linter: {run.linter_root} at {run.commit}")
    w(f"corpus: {SRC} ({n_files} files); lint run {run.seconds:.1f} s, exit {run.returncode}")
    stats = [ln for ln in run.stderr.splitlines() if ln.startswith("files=")]
    if stats:
        w(f"linter statistics: {stats[-1]}")
    w(f"findings: {len(run.findings)} in all, {len(rules)} MM1xx-MM8xx on {len(by_line)} distinct lines")
    w("per rule: " + ", ".join(f"{c} {n}" for c, n in sorted(codes.items())))
    w(f"zero-crash check: MM001 {codes.get('MM001', 0)}, MM002 {codes.get('MM002', 0)}, "
      f"traceback {'YES' if 'Traceback' in run.stderr else 'no'}, exit status {run.returncode} -> "
      f"{'CRASH' if crashed else 'ok'}")
    rest = "\n".join(ln for ln in run.stderr.splitlines() if not ln.startswith("files="))
    if rest.strip():
        w("stderr (last 2000 chars):\n" + rest[-2000:])

    rs = recall_sample(cands, labels, args.recall_n, args.extra)
    ps = precision_sample(list(by_line), labels, args.precision_n)
    hits = [k for k in rs.keys if labelled(labels, k)]
    found_sites = [k for k in hits if found(k)]
    misses = [k for k in hits if not found(k)]
    true_pos = [k for k in ps.keys if labelled(labels, k)]
    false_pos = [k for k in ps.keys if not labelled(labels, k)]

    w("")
    w(f"RECALL    {fmt_ci(len(found_sites), len(hits))}   "
      f"[{len(rs.keys)} grep candidates labelled in sample order, of {len(cands)}; "
      f"{'complete' if rs.complete else 'INCOMPLETE'}]")
    w(f"PRECISION {fmt_ci(len(true_pos), len(ps.keys))}   "
      f"[{len(ps.keys)} of {len(by_line)} finding lines; {'complete' if ps.complete else 'INCOMPLETE'}]")
    dl = [k for k in ps.keys if any(not str(f["code"]).startswith("MM204") for f in by_line[k])]
    w(f"  precision without lines only MM204 reports: {fmt_ci(sum(bool(labelled(labels, k)) for k in dl), len(dl))}")
    no5 = [k for k in hits if labels[k].get("class") != "5"]
    w(f"  recall without class 5 (URL literals in data): {fmt_ci(sum(found(k) for k in no5), len(no5))}")
    classes = sorted({str(labels[k].get("class", "-")) for k in hits})
    if hits:
        w("recall by class of site (issue #11 classes 1-6, 'catalogued' = a catalogue API called directly): "
          + ", ".join(f"{c} {sum(found(k) for k in hits if str(labels[k].get('class', '-')) == c)}/"
                      f"{sum(str(labels[k].get('class', '-')) == c for k in hits)}" for c in classes))

    if hits:
        pkgs = sorted({k.split("/", 1)[0] for k in hits})
        w("recall sample by package (found/true sites): " + ", ".join(
            f"{p} {sum(found(k) for k in hits if k.startswith(p + '/'))}/"
            f"{sum(k.startswith(p + '/') for k in hits)}" for p in pkgs))
        w("precision sample by rule (true/lines; a line with several codes counts for each): " + ", ".join(
            f"{c} {sum(bool(labelled(labels, k)) for k in ps.keys if c in {str(f['code']) for f in by_line[k]})}/"
            f"{sum(c in {str(f['code']) for f in by_line[k]} for k in ps.keys)}"
            for c in sorted({str(f["code"]) for k in ps.keys for f in by_line[k]})))

    if args.by_pattern:
        w("")
        w("unlabelled diagnostic: grep candidates (all of them, not the sample) with a finding, by pattern:")
        for pat in PATTERNS:
            rx = re.compile(pat)
            keys = [k for k in cands if rx.search(source(k.rpartition(":")[0]).lines[int(k.rpartition(":")[2]) - 1])]
            w(f"  {sum(found(k) for k in keys):5d}/{len(keys):<5d} {pat}")

    def show(title: str, keys: list[str], with_codes: bool) -> None:
        w("")
        w(f"{title} ({len(keys)}):")
        for k in keys:
            lab = labels.get(k, {})
            extra = ""
            if with_codes:
                extra = " [" + ",".join(sorted({str(f["code"]) for f in by_line.get(k, [])})) + "]"
            cls = f" (class {lab['class']})" if "class" in lab else ""
            w(f"  {k}{extra}{cls}: {lab.get('reason', '')}")

    show("missed true download sites", misses, False)
    show("false positives", false_pos, True)
    if args.verbose:
        show("found true download sites", found_sites, False)
        show("true positives", true_pos, True)
    need = rs.missing + [k for k in ps.missing if k not in rs.missing]
    w("")
    if need:
        w(f"LABELS MISSING ({len(need)}): label these in {LABELS.relative_to(ROOT)} and run again "
          "(--show-missing prints their code, --add-missing writes null entries to fill in)")
        for k in need:
            codes_here = ",".join(sorted({str(f["code"]) for f in by_line.get(k, [])}))
            w(f"  {k}  [{'precision ' + codes_here if k in ps.missing else 'recall'}]")
            if args.show_missing:
                w(context(k))
                for f in by_line.get(k, []):
                    w(f"         {f['message']}")
    else:
        w("labels missing: none")
    if need and args.add_missing:
        for k in need:
            labels.setdefault(k, {"download": None, "reason": "",
                                  "kind": "precision" if k in ps.missing else "recall"})
        save_labels(labels)
        w(f"wrote {len(need)} null entries to {LABELS}")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--linter-root", type=Path, default=ROOT,
                    help="checkout whose mm_lint (and pyproject.toml) to run; default: this repository")
    ap.add_argument("--findings", type=Path, help="reuse this `mm-lint --format json` output instead of a run")
    ap.add_argument("--save-findings", type=Path, help="write the run's findings (paths relative to the corpus)")
    ap.add_argument("--jobs", default="auto")
    ap.add_argument("--recall-n", type=int, default=100, help="true download sites in the recall sample")
    ap.add_argument("--precision-n", type=int, default=100, help="finding lines in the precision sample")
    ap.add_argument("--extra", type=int, default=40, help="how many unlabelled recall candidates to ask for")
    ap.add_argument("--show-missing", action="store_true", help="print the code around each unlabelled line")
    ap.add_argument("--add-missing", action="store_true", help="write null entries for the unlabelled lines")
    ap.add_argument("--verbose", "-v", action="store_true", help="also list the hits")
    ap.add_argument("--by-pattern", action="store_true",
                    help="also count, per grep pattern, the candidates (unlabelled) that have a finding")
    args = ap.parse_args()
    if not SRC.is_dir():
        subprocess.run(["bash", str(FETCH), str(CORPUS)], cwd=ROOT, check=True)
    if args.findings:
        data = json.loads(args.findings.read_text())
        run = LintRun(data["findings"], data.get("returncode", 0), data.get("stderr", ""),
                      data.get("seconds", 0.0), data.get("linter_root", "?"), data.get("commit", "?"))
    else:
        run = run_linter(args.linter_root.resolve(), args.jobs)
    if args.save_findings:
        args.save_findings.write_text(json.dumps(run.__dict__, indent=0) + "\n")
    labels = load_labels()
    sys.stdout.write(report(run, candidates(), labels, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
