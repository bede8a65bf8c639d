"""``model-manager``: resolve, digest, signature, verify, audit. Exit 0 ok, 1 check failed, 2 usage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from model_manager.errors import ModelManagerError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="model-manager", description="Pinned, offline, provable models.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("resolve", help="print resolved specs as JSON (artifacts verified)")
    r.add_argument("--profile", required=True, help="YAML profile")
    r.add_argument("--component")
    r.add_argument("--role")
    d = sub.add_parser("digest", help="print the weights_digest of files or model folders")
    d.add_argument("paths", nargs="+", metavar="PATH")
    s = sub.add_parser("signature", help="print a component's model_signature")
    s.add_argument("--profile", required=True)
    s.add_argument("--component", required=True)
    v = sub.add_parser("verify", help="check every artifact is present and matches its digest")
    v.add_argument("--profile", required=True)
    a = sub.add_parser("audit", help="check every NPZ's model_signature against manifest.json")
    a.add_argument("run_dir", metavar="RUN_DIR")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "resolve" and args.role and not args.component:
        parser.error("--role needs --component")
    try:
        return _COMMANDS[args.command](args)
    except ModelManagerError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED


def _resolve(args: argparse.Namespace) -> int:
    from model_manager.mapping.loader import load_profile
    from model_manager.mapping.resolve import open_cache, resolve_mapping, roles_of, spec_of

    specs = resolve_mapping(load_profile(args.profile), open_cache()).specs
    if args.role:
        specs = {args.component: {args.role: spec_of(specs, args.component, args.role, args.profile)}}
    elif args.component:
        specs = {args.component: roles_of(specs, args.component, args.profile)}
    out = [spec.model_dump(mode="json") for roles in specs.values() for spec in roles.values()]
    print(json.dumps(out[0] if args.role else out, indent=2, sort_keys=True))
    return EXIT_OK


def _digest(args: argparse.Namespace) -> int:
    from model_manager.artifacts.digest import weights_digest
    from model_manager.mapping.resolve import open_cache

    cache, status = open_cache(), EXIT_OK
    for path in args.paths:
        real = os.path.realpath(path)
        if not os.path.exists(real):
            print(f"model_artifact_missing: {path}: no such file or folder", file=sys.stderr)
            status = EXIT_FAILED
            continue
        root = real if os.path.isdir(real) else os.path.dirname(real)
        try:
            print(f"{weights_digest(real, root, cache, field=path)}  {path}")
        except ModelManagerError as exc:
            print(str(exc), file=sys.stderr)
            status = EXIT_FAILED
    return status


def _signature(args: argparse.Namespace) -> int:
    from model_manager.mapping.loader import load_profile
    from model_manager.mapping.resolve import open_cache, resolve_mapping, roles_of
    from model_manager.provenance.signature import model_signature, models_used

    specs = resolve_mapping(load_profile(args.profile), open_cache()).specs
    print(model_signature(models_used(roles_of(specs, args.component, args.profile).values())))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from model_manager.mapping.loader import load_profile
    from model_manager.mapping.resolve import open_cache, verify_mapping

    mapping = load_profile(args.profile)
    problems = verify_mapping(mapping, open_cache())
    for problem in problems:
        print(str(problem))
    count = sum(len(roles) for roles in mapping.components.values())
    print(f"verify: {count} entries, {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    from model_manager.provenance import audit_run_dir

    checked, problems = audit_run_dir(args.run_dir)
    for problem in problems:
        print(str(problem))
    print(f"audit: {checked} NPZ file(s), {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK


_COMMANDS = {"resolve": _resolve, "digest": _digest, "signature": _signature, "verify": _verify,
             "audit": _audit}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
