"""`agora`: the operator's command line.

agora db upgrade                      apply migrations
agora worker NAME [--workers N]       run a worker pool (competing consumers)
agora workers                         list the workers and their health ports
agora edge                            run the HTTP edge
agora keys rotate                     add a token-signing key; older keys keep verifying
agora seed                            create demo data through the public commands
agora docs                            regenerate docs/asyncapi.json and docs/openapi.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from agora.settings import SERVICES, get_settings, worker_port

ROOT = Path(__file__).resolve().parent.parent


def _db_upgrade(args: argparse.Namespace) -> int:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "db" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "db" / "migrations"))
    config.set_main_option("sqlalchemy.url", get_settings().database_url)
    command.upgrade(config, args.revision)
    return 0


def _worker(args: argparse.Namespace) -> int:
    settings = get_settings()
    port = args.port or worker_port(settings, args.name)
    # Processes of one pool share a port; Prometheus' multiprocess mode lets any of
    # them report the whole pool's metrics. The directory must start empty.
    # One directory per pool (name and port): a second pool of the same worker on this
    # machine must not wipe the first one's files.
    metrics_dir = Path(args.run_dir) / "metrics" / f"{args.name}-{port}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    argv = [
        sys.executable,
        "-m",
        "faststream",
        "run",
        f"workers.{args.name}.app:app",
        "--workers",
        str(args.workers),
        "--host",
        settings.host,
        "--port",
        str(port),
    ]
    os.execv(sys.executable, argv)


def _list_workers(args: argparse.Namespace) -> int:
    settings = get_settings()
    for name in SERVICES:
        print(name, worker_port(settings, name))
    return 0


def _edge(args: argparse.Namespace) -> int:
    from edge.app import main

    main()
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    import asyncio

    from workers.users.keys import rotate_signing_key

    kid = asyncio.run(rotate_signing_key(get_settings()))
    delay = get_settings().signing_key_activation_seconds
    print(f"new signing key {kid}: published now, signs new tokens in {delay:.0f} s; older keys keep verifying")
    return 0


def _seed(args: argparse.Namespace) -> int:
    import asyncio

    from agora.seed import seed

    return asyncio.run(seed(get_settings()))


def _docs(args: argparse.Namespace) -> int:
    from agora.docs import write_documents

    for path in write_documents(ROOT / "docs"):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agora", description="Agora operator commands")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database migrations").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_db_upgrade)

    worker = sub.add_parser("worker", help="run a worker pool")
    worker.add_argument("name", choices=SERVICES)
    worker.add_argument("--workers", type=int, default=1, help="processes in the pool")
    worker.add_argument("--port", type=int, default=0, help="health/metrics port (default: base + index)")
    worker.add_argument("--run-dir", default=os.environ.get("AGORA_RUN_DIR", ".run"))
    worker.set_defaults(func=_worker)

    workers = sub.add_parser("workers", help="list the workers and their health ports")
    workers.set_defaults(func=_list_workers)

    sub.add_parser("edge", help="run the HTTP edge").set_defaults(func=_edge)
    keys = sub.add_parser("keys", help="token-signing keys").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("rotate", help="add a new signing key (old ones keep verifying)").set_defaults(func=_keys_rotate)

    sub.add_parser("seed", help="create demo data").set_defaults(func=_seed)
    sub.add_parser("docs", help="regenerate API and message documents").set_defaults(func=_docs)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
