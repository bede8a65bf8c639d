"""``mm-lint``: the standalone checker, its ``--fix``, and ``mm-lint licenses``.

Exit status: 0 clean, 1 findings (or, with ``--diff``, changes to make), 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from mm_lint import config as config_mod
from mm_lint import engine
from mm_lint.engine import Finding
from mm_lint.formats import FORMATS, render
from model_manager.errors import ModelManagerError
from model_manager.version import version


def _display(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def iter_files(paths: Sequence[str], cfg: config_mod.Config) -> Iterator[str]:
    """Python files under ``paths``, excludes applied (to named files too, for pre-commit)."""
    root = str(cfg.root)
    for p in paths:
        ap = os.path.abspath(p)
        if os.path.isfile(ap):
            if not cfg.excluded(os.path.relpath(ap, root)):
                yield ap
            continue
        for dirpath, dirnames, filenames in os.walk(ap):
            rel_dir = os.path.relpath(dirpath, root)
            dirnames[:] = sorted(d for d in dirnames
                                 if not cfg.excluded(os.path.join(rel_dir, d) if rel_dir != "." else d))
            for name in sorted(filenames):
                if name.endswith((".py", ".pyi")):
                    full = os.path.join(dirpath, name)
                    if not cfg.excluded(os.path.relpath(full, root)):
                        yield full


def _lint_file(path: str, allowed_hosts: frozenset[str]) -> tuple[str, bool, list[Finding]]:
    """(path, parsed, findings) for one file: top-level so worker processes can run it."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return path, False, [Finding(path, 1, 1, "MM002", f"MM002 cannot read the file: {exc}")]
    if not engine.might_match(data):
        return path, False, []
    return path, True, engine.check_bytes(data, path, allowed_hosts, prefiltered=True)


def _lint_chunk(args: tuple[list[str], frozenset[str]]) -> list[tuple[str, bool, list[Finding]]]:
    paths, hosts = args
    return [_lint_file(p, hosts) for p in paths]


def resolve_jobs(jobs: str | int, n_files: int) -> int:
    """``auto``: one process per CPU when there is enough work to pay for starting them.

    Measured, not assumed (bench/bench_lint.py prints it every run): parsing is CPU-bound
    and splits cleanly across processes where the machine has the cores.
    """
    if isinstance(jobs, int) or str(jobs).isdigit():
        return max(1, int(jobs))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cpus, 8) if n_files >= PARALLEL_MIN_FILES else 1


PARALLEL_MIN_FILES = 200


def _run(todo: list[str], hosts: frozenset[str], jobs: int) -> list[tuple[str, bool, list[Finding]]]:
    import gc

    # ast trees hold no reference cycles: the cyclic collector only costs time here.
    enabled = gc.isenabled()
    gc.disable()
    try:
        if jobs <= 1 or len(todo) < 2:
            return [_lint_file(p, hosts) for p in todo]
        import multiprocessing

        size = max(1, min(64, len(todo) // (jobs * 8)))
        chunks = [(todo[i:i + size], hosts) for i in range(0, len(todo), size)]
        with multiprocessing.get_context().Pool(jobs) as pool:
            return [item for chunk in pool.imap(_lint_chunk, chunks) for item in chunk]
    finally:
        if enabled:
            gc.enable()


def lint_paths(paths: Sequence[str], cfg: config_mod.Config, use_cache: bool = True,
               jobs: str | int = "auto") -> tuple[list[Finding], dict[str, int]]:
    """Findings for every file (paths as given to the user), and counts for --statistics."""
    from mm_lint.cache import Cache
    from mm_lint.rules import catalogue_fingerprint

    cache_dir = (cfg.root / cfg.cache_dir) if use_cache else None
    cache = Cache(cache_dir, f"{catalogue_fingerprint()}:{cfg.fingerprint()}")
    stats = {"files": 0, "cached": 0, "skipped_by_prefilter": 0, "parsed": 0, "jobs": 1}
    results: dict[str, list[Finding]] = {}
    order: list[str] = []
    todo: list[str] = []
    stat_of: dict[str, os.stat_result] = {}
    for path in iter_files(paths, cfg):
        stats["files"] += 1
        try:
            st = os.stat(path)
        except OSError:
            continue
        order.append(path)
        found = cache.get(path, st)
        if found is not None:
            stats["cached"] += 1
            results[path] = found
        else:
            todo.append(path)
            stat_of[path] = st
    stats["jobs"] = resolve_jobs(jobs, len(todo))
    for path, parsed, found in _run(todo, cfg.allowed_hosts, stats["jobs"]):
        stats["parsed" if parsed else "skipped_by_prefilter"] += 1
        results[path] = found
        cache.put(path, stat_of[path], found)
    cache.save()
    out: list[Finding] = []
    for path in order:
        found = results.get(path)
        if found:
            rel = os.path.relpath(path, cfg.root)
            show = _display(path)
            out.extend(Finding(show, f.line, f.col, f.code, f.message, f.fixable)
                       for f in found if cfg.wanted(rel, f.code))
    return out, stats


def _apply_fixes(findings: list[Finding], write: bool) -> tuple[list[str], set[str]]:
    """Diffs of the files a fix changes (written when ``write``); the paths changed."""
    from mm_lint import fix

    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        if f.fixable:
            by_file.setdefault(f.path, []).append(f)
    diffs, changed = [], set()
    for path, items in sorted(by_file.items()):
        before = Path(path).read_bytes()
        after = fix.fix_source(before, items)
        if after != before:
            changed.add(path)
            diffs.append(fix.unified_diff(path, before, after))
            if write:
                Path(path).write_bytes(after)
    return diffs, changed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mm-lint", description="Find model downloads and network calls "
                                "before they ship. Subcommands: `mm-lint licenses`, `mm-lint rules`.")
    p.add_argument("paths", nargs="*", default=["."], help="files or folders (default: .)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--fix", action="store_true", help="apply the safe fixes (libcst) and report the rest")
    p.add_argument("--diff", action="store_true", help="print the fixes as a diff, change nothing")
    p.add_argument("--no-cache", action="store_true", help="parse every file again")
    p.add_argument("--jobs", "-j", default="auto",
                   help=f"processes: a number, or auto (one per CPU from {PARALLEL_MIN_FILES} files to parse)")
    p.add_argument("--config", type=Path, help="pyproject.toml to read [tool.mm-lint] from")
    p.add_argument("--select", help="comma-separated code prefixes to report (default: MM)")
    p.add_argument("--ignore", help="comma-separated code prefixes not to report")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    p.add_argument("--statistics", action="store_true", help="print file counts to stderr")
    p.add_argument("--version", action="version", version=f"mm-lint {version()}")
    return p


def _licenses_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mm-lint licenses", description="Every model named in the profiles "
                                "has a row with a licence and a source in the inventory.")
    p.add_argument("profiles", nargs="+", type=Path, help="YAML/JSON model profiles")
    p.add_argument("--inventory", type=Path, default=Path("docs/MODEL_LICENSES.md"))
    p.add_argument("--format", choices=FORMATS, default="text")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["licenses"]:
            return _licenses(args_list[1:])
        if args_list[:1] == ["rules"]:
            return _rules(args_list[1:])
        if args_list[:1] == ["check"]:
            args_list = args_list[1:]
        return _check(args_list)
    except ModelManagerError as exc:
        print(f"mm-lint: {exc}", file=sys.stderr)
        return 2


def _check(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    cfg = config_mod.load(args.config) if args.config else config_mod.load(start=Path.cwd())
    if args.select or args.ignore:
        import dataclasses

        changes: dict[str, object] = {}
        if args.select:
            changes["select"] = tuple(s.strip() for s in args.select.split(",") if s.strip())
        if args.ignore:
            changes["ignore"] = cfg.ignore + tuple(s.strip() for s in args.ignore.split(",") if s.strip())
        cfg = dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]
    findings, stats = lint_paths(args.paths, cfg, use_cache=not args.no_cache, jobs=args.jobs)
    changed: set[str] = set()
    if args.fix or args.diff:
        diffs, changed = _apply_fixes(findings, write=args.fix and not args.diff)
        if args.diff:
            sys.stdout.write("".join(diffs))
        elif changed:
            findings, _ = lint_paths(args.paths, cfg, use_cache=not args.no_cache, jobs=args.jobs)
            print(f"mm-lint: fixed {len(changed)} file(s)", file=sys.stderr)
    if args.diff:
        # stdout carries only the diff; what no fix covers goes to stderr
        sys.stderr.write(render([f for f in findings if not (f.fixable and f.path in changed)], "text"))
    else:
        sys.stdout.write(render(findings, args.format))
    if args.statistics:
        print(" ".join(f"{k}={v}" for k, v in stats.items()) + f" findings={len(findings)}", file=sys.stderr)
    if args.exit_zero:
        return 0
    return 1 if findings or (args.diff and changed) else 0


def _licenses(argv: list[str]) -> int:
    from mm_lint import licenses

    args = _licenses_parser().parse_args(argv)
    findings = licenses.check(args.inventory, args.profiles)
    sys.stdout.write(render(findings, args.format))
    return 1 if findings else 0


def _rules(argv: list[str]) -> int:
    import json

    from mm_lint import rules

    as_json = "--format=json" in argv or argv[-2:] == ["--format", "json"]
    items = [{"code": r.code, "library": r.library, "names": list(r.names), "why": r.why, "fix": r.fix,
              "autofix": rules.fix_kwarg(r) is not None, "category": r.category} for r in rules.all_rules()]
    if as_json:
        print(json.dumps(items, indent=2))
    else:
        for it in items:
            print(f"{it['code']}  {it['library']:<22} {', '.join(it['names'])}")  # type: ignore[arg-type]
    return 0
