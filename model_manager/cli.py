"""``model-manager``: resolve, digest, signature, verify, audit, health.

Exit status: 0 ok; 1 a check failed; 2 a usage error; 3 an environment failure the user must
fix (an unreadable file, a missing models root, an insecure cache, a full disk); 130 interrupted.
Every failure is one line that starts with its code; ``--format json`` prints one JSON document
instead, failures included. A traceback is a bug.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from model_manager.errors import EnvironmentFailure, Interrupted, ModelManagerError, UsageError, os_failure, shown

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3

#: what a command hands back: its exit status, the JSON document, and the text lines to print
Outcome = tuple[int, dict[str, Any], list[str]]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"run `{self.prog} --help`")


def _parser() -> argparse.ArgumentParser:
    from model_manager.version import version

    p = _Parser(prog="model-manager", description="Pinned, offline, provable models.",
                epilog="exit status: 0 ok, 1 a check failed, 2 usage, 3 environment failure, 130 interrupted")
    p.add_argument("--version", action="version", version=f"model-manager {version()}")
    common = _Parser(add_help=False)
    common.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default): one line per result or problem; json: one JSON document")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("resolve", parents=[common], help="print resolved specs (artifacts verified)")
    r.add_argument("--profile", required=True, help="YAML profile")
    r.add_argument("--component")
    r.add_argument("--role")
    d = sub.add_parser("digest", parents=[common], help="print the weights_digest of files or model folders")
    d.add_argument("paths", nargs="+", metavar="PATH")
    d.add_argument("--models-root", metavar="DIR",
                   help="the root symbolic links may point within (default: $MM_MODELS_ROOT when PATH is "
                        "inside it, else the folder itself)")
    s = sub.add_parser("signature", parents=[common], help="print a component's model_signature")
    s.add_argument("--profile", required=True)
    s.add_argument("--component", required=True)
    v = sub.add_parser("verify", parents=[common], help="check every artifact is present and matches its digest")
    v.add_argument("--profile", required=True)
    v.add_argument("--no-cache", action="store_true", help="re-hash every artifact (as MM_VERIFY=full)")
    a = sub.add_parser("audit", parents=[common], help="check a run folder against its manifest.json")
    a.add_argument("run_dir", metavar="RUN_DIR")
    h = sub.add_parser("health", parents=[common],
                       help="build every role's handle and check it (Triton: ready; ONNX: a session; torch: "
                            "its bytes); exit 1 if any is not ok")
    h.add_argument("--profile", required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    fmt = "json" if _wants_json(sys.argv[1:] if argv is None else argv) else "text"
    try:
        try:
            args = _parser().parse_args(argv)
            fmt = args.format
            status, document, lines = _COMMANDS[args.command](args)
            _emit(fmt, {"command": args.command, "ok": status == EXIT_OK, "exit": status, **document}, lines)
            return status
        except _OutputLost as lost:
            _fail("text", lost.failure)
            return lost.failure.exit_status
        except KeyboardInterrupt:
            raise Interrupted("stopped by the user before the command finished") from None
        except OSError as exc:  # anything the commands did not name more precisely
            raise _environment_failure(exc) from None
    except ModelManagerError as exc:
        return _fail(fmt, exc)


def _wants_json(argv: Sequence[str]) -> bool:
    """Before parsing succeeds, a usage error is still printed in the format asked for."""
    return "json" in argv and any(a == "--format" or a == "--format=json" for a in argv)


def _emit(fmt: str, document: dict[str, Any], lines: list[str]) -> None:
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n" if fmt == "json" else \
        "".join(line + "\n" for line in lines)
    _write(sys.stdout, text)


def _write(stream: Any, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:
        # The reader went away (`| head`) or the disk is full (`> /dev/full`): point the stream at
        # /dev/null so the interpreter's own flush at exit cannot print a traceback, then say it once.
        _silence(stream)
        raise _OutputLost(_environment_failure(exc, what="standard output" if stream is sys.stdout
                                               else "standard error")) from None


class _OutputLost(Exception):
    """Writing the result failed: the failure can only go to the other stream."""

    def __init__(self, failure: EnvironmentFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _silence(stream: Any) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _fail(fmt: str, exc: ModelManagerError) -> int:
    if fmt == "json":
        try:
            _emit(fmt, {"ok": False, "exit": exc.exit_status, "error": exc.to_dict()}, [])
            return exc.exit_status
        except _OutputLost:
            pass  # stdout is gone: fall back to the one line on stderr
    try:
        _write(sys.stderr, str(exc).replace("\n", " ") + "\n")
    except _OutputLost:
        pass  # both streams are gone: the exit status is all that is left to say it
    return exc.exit_status


def _environment_failure(exc: OSError, what: str | None = None) -> EnvironmentFailure:
    target = what or (shown(exc.filename) if exc.filename is not None else "a file")
    hint = "the reader closed the pipe; nothing is wrong with the run" if exc.errno == errno.EPIPE else None
    return os_failure(exc, target, hint=hint)


def _problem_lines(problems: Sequence[ModelManagerError]) -> list[str]:
    return [str(p).replace("\n", " ") for p in problems]


# ------------------------------------------------------------------ commands
def _resolve(args: argparse.Namespace) -> Outcome:
    from model_manager.mapping.loader import load_profile
    from model_manager.mapping.resolve import resolve_mapping, roles_of, spec_of

    if args.role is not None and args.component is None:
        raise UsageError("--role needs --component", hint="run `model-manager resolve --help`")
    specs = resolve_mapping(load_profile(args.profile), _cache(args)).specs
    if args.role is not None:
        specs = {args.component: {args.role: spec_of(specs, args.component, args.role, args.profile)}}
    elif args.component is not None:
        specs = {args.component: roles_of(specs, args.component, args.profile)}
    found = [spec for roles in specs.values() for spec in roles.values()]
    lines = [f"{s.component_name}/{s.role}: {s.model_name}@{s.model_version} {s.runtime}/{s.engine}/{s.precision} "
             f"on {s.device} {s.weights_digest}" for s in found]
    return EXIT_OK, {"specs": [s.model_dump(mode="json") for s in found]}, lines


def _digest(args: argparse.Namespace) -> Outcome:
    from model_manager.artifacts.digest import weights_digest
    from model_manager.errors import ModelArtifactMissing

    cache, results, problems = _cache(args), [], []
    for path in args.paths:
        try:
            try:
                os.stat(path)  # a loop or a permission problem is the environment's, not a missing file
            except FileNotFoundError:
                raise ModelArtifactMissing(f"{shown(path)}: no such file or folder", field="PATH",
                                           hint="name an existing weights file or model folder") from None
            real = os.path.realpath(path)
            digest = weights_digest(real, _digest_root(real, args.models_root), cache, field=shown(path))
            results.append({"path": path, "weights_digest": digest})
        except ModelManagerError as exc:
            problems.append(exc)
        except OSError as exc:
            problems.append(_environment_failure(exc))
    lines = [f"{r['weights_digest']}  {r['path']}" for r in results] + _problem_lines(problems)
    status = max((p.exit_status for p in problems), default=EXIT_OK)
    return status, {"digests": results, "problems": [p.to_dict() for p in problems]}, lines


def _digest_root(real: str, explicit: str | None) -> str:
    """Links inside a model folder may point within the models root, as the manager allows."""
    from model_manager.artifacts.paths import MODELS_ROOT_ENV, inside

    if explicit is not None:
        return os.path.realpath(explicit)
    root = os.environ.get(MODELS_ROOT_ENV)
    if root and inside(real, os.path.realpath(root)):
        return os.path.realpath(root)
    return real if os.path.isdir(real) else os.path.dirname(real)


def _signature(args: argparse.Namespace) -> Outcome:
    from model_manager.mapping.loader import load_profile
    from model_manager.mapping.resolve import resolve_mapping, roles_of
    from model_manager.provenance.signature import model_signature, models_used

    specs = resolve_mapping(load_profile(args.profile), _cache(args)).specs
    signature = model_signature(models_used(roles_of(specs, args.component, args.profile).values()))
    return EXIT_OK, {"component": args.component, "model_signature": signature}, [signature]


def _verify(args: argparse.Namespace) -> Outcome:
    from model_manager.mapping.loader import load_profile
    from model_manager.mapping.resolve import verify_mapping

    mapping = load_profile(args.profile)
    problems = verify_mapping(mapping, _cache(args))
    count = sum(len(roles) for roles in mapping.components.values())
    summary = f"verify: {count} entries, {len(problems)} problem(s)" + ("" if problems else ": every artifact matches")
    status = max((p.exit_status for p in problems), default=EXIT_OK)
    return status, {"entries": count, "problems": [p.to_dict() for p in problems]}, \
        [*_problem_lines(problems), summary]


def _audit(args: argparse.Namespace) -> Outcome:
    from model_manager.provenance import audit_run_dir

    report = audit_run_dir(args.run_dir)
    problems = list(report.problems)
    summary = f"audit: {report.checked} output(s), {len(problems)} problem(s)" + \
        ("" if problems else ": every output matches the manifest")
    status = max((p.exit_status for p in problems), default=EXIT_OK)
    return status, {"outputs": report.checked, "problems": [p.to_dict() for p in problems]}, \
        [*_problem_lines(problems), summary]


#: the run context ``health`` builds its manager with: a check, not a run (nothing is written)
HEALTH_RUN_CONTEXT = {"platform_id": "model-manager-health", "video_id": "none", "run_id": "health",
                      "config_hash": "none", "sampling_policy_version": "none", "dataprocessor_version": "none"}


def _health(args: argparse.Namespace) -> Outcome:
    from model_manager.manager import ModelManager

    records = ModelManager(HEALTH_RUN_CONTEXT, profile_path=args.profile).health()
    bad = [r for r in records if not r.ok]
    summary = f"health: {len(records)} role(s), {len(bad)} not ok" + ("" if bad else ": every role is ready")
    return (EXIT_FAILED if bad else EXIT_OK), {"records": [r.model_dump() for r in records]}, \
        [*(r.line() for r in records), summary]


def _cache(args: argparse.Namespace) -> Any:
    from model_manager.artifacts.cache import DigestCache, open_cache

    return DigestCache(None) if getattr(args, "no_cache", False) else open_cache()


_COMMANDS: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    "resolve": _resolve, "digest": _digest, "signature": _signature, "verify": _verify, "audit": _audit,
    "health": _health,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
