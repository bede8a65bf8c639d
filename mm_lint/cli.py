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
from mm_lint import project as project_mod
from mm_lint.cache import Cache
from mm_lint.config import Options
from mm_lint.errors import ModelManagerError
from mm_lint.findings import Finding
from mm_lint.formats import FORMATS, render
from mm_lint.project import Needles, Project, Summary
from model_manager.version import version

# path, parsed, findings, index entry, the spans a second look covered (None: all of the file)
Outcome = tuple[str, bool, list[Finding], Summary | None, list[tuple[int, int]] | None]
Look = tuple[Needles, list[list[object]] | None]  # what a second look searches for, the file's outline


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


def _lint_file(path: str, options: Options, project: Project | None = None, look: Look | None = None) -> Outcome:
    """One file: top-level so worker processes can run it. With ``project``: the second look,
    knowing the project's wrappers and re-exports, taken only when the file holds one of the
    needles, and only at the statements that hold them when the file's outline is known."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return path, False, [Finding(path, 1, 1, "MM002", f"MM002 cannot read the file: {exc}")], None, None
    if project is None and not engine.might_match(data):
        return path, False, [], project_mod.scanned(path, data), None
    if project is None:
        found, result = engine.check_file(data, path, options, prefiltered=True)
        spans = None
    else:
        needles, top = look or ([], None)
        if not project_mod.worth_a_look(data, needles):
            return path, False, [], None, None
        found, result, spans = _second_look(data, path, options, project, needles, top)
    entry = (project_mod.summary(result.module, result.wrappers, result.imports, result.outline)
             if result is not None else None)
    return path, True, found, entry, spans


def _second_look(data: bytes, path: str, options: Options, project: Project, needles: Needles,
                 top: list[list[object]] | None
                 ) -> tuple[list[Finding], engine.Result | None, list[tuple[int, int]] | None]:
    """Check the statements that hold a needle (all of the file without an outline). A wrapper found
    there may be called from the rest of the file: its calls become needles for another look."""
    functions = frozenset(str(t[3]) for t in top or () if t[2] == "f")
    known = set(project.wrappers)
    for _ in range(3):
        part = project_mod.narrowed(data, top, needles) if top else None
        text, spans = part if part is not None else (data, None)
        found, result = engine.check_file(text, path, options, prefiltered=True, project=project, functions=functions)
        fresh = [(f"{key.rpartition('.')[2]}(".encode(), 1) for key in (result.wrappers if result else ())
                 if key not in known]
        if spans is None or not fresh or project_mod.covered(data, fresh, spans):
            return found, result, spans
        known.update(result.wrappers if result else ())
        needles = needles + fresh
    return (*engine.check_file(data, path, options, prefiltered=True, project=project), None)


Chunk = tuple[list[str], Options, Project | None, dict[str, Look] | None]


def _lint_chunk(args: Chunk) -> list[Outcome]:
    paths, options, project, looks = args
    return [_lint_file(p, options, project, looks[p] if looks else None) for p in paths]


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


def _run(todo: list[str], options: Options, jobs: int, project: Project | None = None,
         looks: dict[str, Look] | None = None) -> list[Outcome]:
    import gc

    # ast trees hold no reference cycles: the cyclic collector only costs time here.
    enabled = gc.isenabled()
    gc.disable()
    try:
        if jobs <= 1 or len(todo) < 2:
            return _lint_chunk((todo, options, project, looks))
        import multiprocessing

        size = max(1, min(64, len(todo) // (jobs * 8)))
        chunks: list[Chunk] = [(todo[i:i + size], options, project, looks) for i in range(0, len(todo), size)]
        with multiprocessing.get_context().Pool(jobs) as pool:
            return [item for chunk in pool.imap(_lint_chunk, chunks) for item in chunk]
    finally:
        if enabled:
            gc.enable()


def lint_paths(paths: Sequence[str], cfg: config_mod.Config, use_cache: bool = True,
               jobs: str | int = "auto") -> tuple[list[Finding], dict[str, int]]:
    """Findings for every file (paths as given to the user), and counts for --statistics."""
    from mm_lint.rules import catalogue_fingerprint

    cache_dir = (cfg.root / cfg.cache_dir) if use_cache else None
    cache = Cache(cache_dir, f"{catalogue_fingerprint()}:{cfg.fingerprint()}")
    options = cfg.options()
    stats = {"files": 0, "cached": 0, "skipped_by_prefilter": 0, "parsed": 0, "jobs": 1}
    results: dict[str, list[Finding]] = {}
    summaries: dict[str, Summary] = {}
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
        stat_of[path] = st
        got = cache.get(path, st)
        if got is not None:
            stats["cached"] += 1
            results[path], entry = got
            if entry:
                summaries[path] = entry
        else:
            todo.append(path)
    stats["jobs"] = resolve_jobs(jobs, len(todo))
    for path, parsed, found, entry, _ in _run(todo, options, stats["jobs"]):
        stats["parsed" if parsed else "skipped_by_prefilter"] += 1
        results[path] = found
        if entry:
            summaries[path] = entry
        cache.put(path, stat_of[path], found, entry)
    _second_pass(order, summaries, results, stat_of, cache, options, jobs, stats)
    cache.save()
    out: list[Finding] = []
    for path in order:
        kept = results.get(path)
        if kept:
            rel = os.path.relpath(path, cfg.root)
            show = _display(path)
            out.extend(f.at(show) for f in kept if cfg.wanted(rel, f.code, f.via))
    return out, stats


def _second_pass(order: list[str], summaries: dict[str, Summary], results: dict[str, list[Finding]],
                 stat_of: dict[str, os.stat_result], cache: Cache, options: Options, jobs: str | int,
                 stats: dict[str, int]) -> None:
    """Check again the files that import a project wrapper or re-export, knowing the index.

    A wrapper found this way (a caller that passes its parameter on) makes another round for
    the files importing it. The wrappers a second look found are kept apart from each file's own:
    they hold only while the index they were found under does (``cache.index``)."""
    import time

    begin = time.perf_counter()
    derived: dict[str, list[list[object]]] = {}
    for path in order:
        got = cache.get_second(path, stat_of[path], cache.index)
        if got is not None and got[1]:
            derived[path] = got[1]
    base = project_mod.bindings(summaries)
    project = project_mod.build(summaries, derived, base)
    if derived and project.fingerprint != cache.index:  # another file changed the index: start over
        derived = {}
        project = project_mod.build(summaries, derived, base)
    looked: dict[str, tuple[list[Finding], list[list[object]]]] = {}
    stored: dict[str, str] = {}  # the fingerprint each looked-at file's cache entry holds
    seen: frozenset[str] = frozenset()
    for _ in range(4):
        if not project.wanted:
            break
        todo: list[str] = []
        looks: dict[str, Look] = {}
        todo_or_new = False
        wanted = project.wanted
        for path in order:
            entry = summaries.get(path)
            imports = entry.get("i") if entry is not None else None
            if not isinstance(imports, dict) or not any(t in wanted and t not in seen for t in imports.values()):
                continue
            got = cache.get_second(path, stat_of[path], project.fingerprint)
            if got is None:
                todo.append(path)
                top = entry.get("t") if entry is not None else None
                looks[path] = (project.needles(imports, seen), top if isinstance(top, list) else None)
                continue
            results[path] = got[0]
            looked[path] = got
            stored[path] = project.fingerprint
            if got[1] and derived.get(path) != got[1]:
                derived[path] = got[1]
                todo_or_new = True
        for path, parsed, found, entry, spans in _run(todo, options, resolve_jobs(jobs, len(todo)), project, looks):
            if not parsed:  # nothing of the index is used there: the first look stands
                looked[path] = (results.get(path, []), derived.get(path, []))
                continue
            stats["second_pass"] = stats.get("second_pass", 0) + 1
            # a wrapper once found stays found in this run: the index only grows, so the rounds end
            known = {str(row[0]): row for row in derived.get(path, [])}
            fresh: list[list[object]] = entry["w"] if entry else []  # type: ignore[assignment]
            known.update((str(row[0]), row) for row in fresh)
            rows = list(known.values())
            if spans is not None:  # a part of the file was looked at again: the rest keeps the first look
                kept = [f for f in results.get(path, []) if not any(s <= f.line <= e for s, e in spans)]
                found = sorted(kept + found, key=lambda f: (f.line, f.col, f.code))  # noqa: PLW2901
            results[path] = found
            looked[path] = (found, rows)
            if rows:
                derived[path] = rows
        seen = wanted
        if not todo and not todo_or_new:
            break  # nothing new was learnt: the index cannot have grown
        grown = project_mod.build(summaries, derived, base)
        if grown.fingerprint == project.fingerprint:
            break
        project = grown
    for path, (found, rows) in looked.items():
        if stored.get(path) != project.fingerprint:
            cache.put_second(path, stat_of[path], project.fingerprint, found, rows)
    cache.set_index(project.fingerprint)
    stats["index_ms"] = round((time.perf_counter() - begin) * 1000)


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
            what = ", ".join(it["names"]) or it["why"]  # type: ignore[arg-type]
            print(f"{it['code']}  {it['library']:<22} {what}")
    return 0
