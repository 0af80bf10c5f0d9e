"""`agora`: the operator's command line.

agora db upgrade                      apply migrations
agora worker NAME [--workers N]       run a worker pool (competing consumers)
agora workers [--json]                each worker pool's health: processes on the broker, /readyz here
agora workers --ports                 each worker's name and health port (what scripts/up starts)
agora edge [--processes N]            run the HTTP edge (N processes on one port: a pool)
agora launch PROCESS [ARGS]           run the edge or a worker as its own broker user, with only its secrets
agora broker setup                    create every process's broker user and permissions, bound the DLQs
agora keys rotate                     add a token-signing key; older keys keep verifying
agora keys retire KID                 retire an old signing key once its tokens have expired
agora keys rotate-data                re-encrypt personal data under the current data key
agora users create-admin --email E    create the first admin (or promote an account)
agora partners create NAME --scopes a,b   a partner's OAuth client and RabbitMQ user (secrets shown once)
agora partners list | disable NAME    the OAuth clients; cut a partner off
agora partners sync                   rewrite partners' broker permissions from the scopes a release defines
agora seed [--products N] [--orders N]  demo data through the public API (products: bulk, for benchmarks)
agora dlq list [--non-empty]          the dead-letter queues and their message counts
agora dlq show QUEUE [--limit N]      the first N dead letters of QUEUE (left in place)
agora dlq replay QUEUE [--id ID ...]  send dead letters back to their work queue (all without --id)
agora dlq purge QUEUE                 delete every dead letter of QUEUE (asks nothing)
agora docs                            regenerate docs/asyncapi.json and docs/openapi.json
agora --version                       the installed version
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from kernel.settings import SERVICES, get_settings, worker_port

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
    # machine must not wipe the first one's files. A pool of one process (as deployed:
    # one per pod) keeps its metrics in memory: a multiprocess metric writes a shared
    # file on every change, 2-3 times the CPU, on every delivery (issue 14).
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if args.workers > 1:
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
    import asyncio
    import json

    from ops.pools import pools, table

    if args.ports:
        settings = get_settings()
        for name in SERVICES:
            print(name, worker_port(settings, name))
        return 0
    found = asyncio.run(pools(get_settings()))
    if args.json:
        print(json.dumps([p.as_dict() for p in found]))
    else:
        print("\n".join(table(found)))
    # Scriptable: 1 when a pool does not answer ready on this machine.
    return 0 if all(p.ready for p in found) else 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agora")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _not_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _edge(args: argparse.Namespace) -> int:
    from edge.app import main

    # Without --processes, AGORA_EDGE_PROCESSES (default 1) decides.
    main(processes=args.processes)
    return 0


def _launch(args: argparse.Namespace) -> int:
    """Exec `agora edge` or `agora worker NAME ARGS` with the environment ops/broker_users.py
    gives that process: its own broker identity, none of the other processes' secrets."""
    from ops.broker_users import BrokerSetupError, process_env

    try:
        env = process_env(args.process, os.environ)
    except BrokerSetupError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    command = ["edge", *args.args] if args.process == "edge" else ["worker", args.process, *args.args]
    agora = str(Path(sys.executable).with_name("agora"))
    os.execve(agora, [agora, *command], env)


def _broker_setup(args: argparse.Namespace) -> int:
    import asyncio

    from ops.broker_users import PROCESSES, BrokerSetupError, password_variable, set_up, vhost_of

    settings = get_settings()
    missing = [password_variable(p) for p in PROCESSES if not os.environ.get(password_variable(p))]
    if missing:
        print(f"refused: set {', '.join(missing)} (scripts/up writes them to .run/agora.env)", file=sys.stderr)
        return 2
    passwords = {p: os.environ[password_variable(p)] for p in PROCESSES}
    vhost = vhost_of(settings.amqp_url)
    try:
        asyncio.run(
            set_up(
                settings.rabbitmq_management_url,
                vhost,
                passwords,
                dead_letter_max_length=settings.dead_letter_max_length,
            )
        )
    except BrokerSetupError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(f"broker users of {', '.join(PROCESSES)} set up in vhost {vhost!r}")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    import asyncio

    from workers.users.keys import rotate_signing_key

    kid = asyncio.run(rotate_signing_key(get_settings()))
    delay = get_settings().signing_key_activation_seconds
    print(f"new signing key {kid}: published now, signs new tokens in {delay:.0f} s; older keys keep verifying")
    return 0


def _keys_retire(args: argparse.Namespace) -> int:
    import asyncio

    from workers.users.keys import RetireRefused, retire_signing_key

    try:
        asyncio.run(retire_signing_key(get_settings(), args.kid))
    except RetireRefused as exc:
        print(f"refused: {exc}")
        return 2
    print(f"signing key {args.kid} retired: it leaves the JWKS, and verifiers stop accepting it at their next refresh")
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    import asyncio
    import getpass

    from ops.seed import LOCAL_ADMIN_EMAIL, LOCAL_ADMIN_PASSWORD
    from workers.users.bootstrap import BootstrapError, create_admin

    settings = get_settings()
    password: str | None
    if args.from_env:
        if settings.env == "production":
            print("refused: AGORA_ENV=production; create the admin with --email and a password you chose")
            return 2
        email = os.environ.get("AGORA_ADMIN_EMAIL", LOCAL_ADMIN_EMAIL)
        password = os.environ.get("AGORA_ADMIN_PASSWORD", LOCAL_ADMIN_PASSWORD)
    elif args.email:
        email = args.email
        # Only a new account needs one; promoting an existing account keeps its password.
        password = os.environ.get(args.password_env) or (
            getpass.getpass(f"password for {email} (if it must be created): ") if sys.stdin.isatty() else None
        )
    else:
        print("give --email (or --from-env for the local development admin)")
        return 2
    try:
        outcome = create_admin(settings, email=email, password=password, username=args.username, promote=args.promote)
        print(asyncio.run(outcome))
    except BootstrapError as exc:
        print(f"refused: {exc}")
        return 2
    return 0


def _partners(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from ops import partners

    settings = get_settings()
    try:
        if args.partners_command == "create":
            created = asyncio.run(partners.create_partner(settings, args.name, args.scopes.split(",")))
            if args.json:
                print(json.dumps(created.as_dict()))
            else:
                print(f"partner {created.name} created; the secrets below are shown only this once")
                for key, value in created.as_dict().items():
                    print(f"{key}: {' '.join(value) if isinstance(value, tuple) else value}")
        elif args.partners_command == "list":
            rows = asyncio.run(partners.list_clients(settings))
            for row in rows if not args.json else ():
                state = f"disabled {row['disabled_at']}" if row["disabled_at"] else "active"
                print(f"{row['name']}\t{row['kind']}\t{row['client_id']}\t{' '.join(row['scopes'])}\t{state}")
            if args.json:
                print(json.dumps(rows))
        elif args.partners_command == "sync":
            synced = asyncio.run(partners.sync_partners(settings))
            names = ", ".join(synced) or "none"
            print(f"broker permissions rewritten from the current scopes for {len(synced)} partner(s): {names}")
        else:
            asyncio.run(partners.disable_partner(settings, args.name))
            print(f"partner {args.name} disabled: no new tokens, broker user deleted")
    except partners.PartnerError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    return 0


def _keys_rotate_data(args: argparse.Namespace) -> int:
    import asyncio

    from db.engine import make_engine
    from db.sealed import reseal_all, still_sealed_under_old_keys
    from kernel.crypto import FieldCipher

    settings = get_settings()
    cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)

    async def run() -> tuple[dict[str, int], int]:
        engine = make_engine(settings.database_url, pool_size=1, application_name="agora-cli")
        try:
            return await reseal_all(engine, cipher), await still_sealed_under_old_keys(engine, cipher)
        finally:
            await engine.dispose()

    counts, left = asyncio.run(run())
    for column, count in counts.items():
        print(f"{column}: {count} re-encrypted")
    if left:
        print(f"{left} values still use older keys (busy rows, or processes without the new key id): run it again")
        return 1
    print(f"0 left: every sealed value uses data key {cipher.current_key_id!r}; older keys may be removed")
    return 0


def _seed(args: argparse.Namespace) -> int:
    import asyncio

    from ops.seed import seed

    settings = get_settings()
    if settings.env == "production":
        print("refused: demo data is not for AGORA_ENV=production")
        return 2
    return asyncio.run(seed(settings, products=args.products, orders=args.orders))


def _dlq(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from edge.dead_letters import DeadLetterError, DeadLetters, NoSuchDeadLetterQueue

    tools = DeadLetters.from_settings(get_settings())
    try:
        if args.dlq_command == "list":
            queues = [q for q in asyncio.run(tools.queues()) if q.messages or not args.non_empty]
            if args.json:
                print(json.dumps([q.as_dict() for q in queues]))
            else:
                print("MESSAGES\tQUEUE")
                for q in queues:
                    print(f"{q.messages}\t{q.queue}")
        elif args.dlq_command == "show":
            for message in asyncio.run(tools.show(args.queue, args.limit)):
                print(json.dumps(message.as_dict(), ensure_ascii=False))
        elif args.dlq_command == "replay":
            replayed = asyncio.run(tools.replay(args.queue, set(args.id) if args.id else None))
            print(f"{replayed} replayed to {args.queue.removesuffix('.dlq')}")
        else:
            print(f"{asyncio.run(tools.purge(args.queue))} discarded from {args.queue}")
    except NoSuchDeadLetterQueue:
        print(f"refused: {args.queue} is not a dead-letter queue (<queue>.dlq) of Agora's vhost", file=sys.stderr)
        return 2
    except DeadLetterError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _docs(args: argparse.Namespace) -> int:
    from ops.docs import write_documents

    for path in write_documents(ROOT / "docs"):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agora", description="Agora operator commands")
    parser.add_argument("--version", action="version", version=f"agora {_version()}")
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

    workers = sub.add_parser("workers", help="each worker pool's health (exit 1 if one is not ready here)")
    workers.add_argument("--json", action="store_true")
    workers.add_argument("--ports", action="store_true", help="only each worker's name and health port (scripts)")
    workers.set_defaults(func=_list_workers)

    edge = sub.add_parser("edge", help="run the HTTP edge")
    edge.add_argument(
        "--processes",
        type=_positive,
        default=None,
        help="edge processes sharing the port (default: AGORA_EDGE_PROCESSES, 1); see docs/operations.md",
    )
    edge.set_defaults(func=_edge)
    launch = sub.add_parser("launch", help="run the edge or a worker as its own broker user, with only its secrets")
    launch.add_argument("process", choices=("edge", *SERVICES))
    launch.add_argument("args", nargs=argparse.REMAINDER, help="agora edge's or agora worker's options")
    launch.set_defaults(func=_launch)
    broker = sub.add_parser("broker", help="broker identities").add_subparsers(dest="broker_command", required=True)
    broker.add_parser(
        "setup", help="create every process's broker user and permissions (AGORA_BROKER_PASSWORD_*), bound the DLQs"
    ).set_defaults(func=_broker_setup)
    keys = sub.add_parser("keys", help="token-signing keys").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("rotate", help="add a new signing key (old ones keep verifying)").set_defaults(func=_keys_rotate)
    retire = keys.add_parser("retire", help="retire an old signing key (once no token it signed is still valid)")
    retire.add_argument("kid")
    retire.set_defaults(func=_keys_retire)
    keys.add_parser(
        "rotate-data", help="re-encrypt personal data under AGORA_DATA_KEY_ID (then older data keys can go)"
    ).set_defaults(func=_keys_rotate_data)

    users = sub.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True)
    create_admin = users.add_parser("create-admin", help="create the first admin, or promote an existing account")
    create_admin.add_argument("--email")
    create_admin.add_argument("--username", help="default: from the email")
    create_admin.add_argument(
        "--promote", action="store_true", help="make the existing account with this email an admin"
    )
    create_admin.add_argument(
        "--password-env", default="AGORA_ADMIN_PASSWORD", help="environment variable holding the password"
    )
    create_admin.add_argument(
        "--from-env",
        action="store_true",
        help="development: AGORA_ADMIN_EMAIL / AGORA_ADMIN_PASSWORD or the local defaults (refused in production)",
    )
    create_admin.set_defaults(func=_create_admin)

    partners = sub.add_parser("partners", help="partner systems (OAuth clients, RabbitMQ users)")
    partners_sub = partners.add_subparsers(dest="partners_command", required=True)
    create_partner = partners_sub.add_parser("create", help="create a partner; prints its secrets once")
    create_partner.add_argument("name")
    create_partner.add_argument("--scopes", required=True, help="comma-separated, e.g. catalog:read,orders:write")
    create_partner.add_argument("--json", action="store_true", help="print the credentials as JSON")
    list_partners = partners_sub.add_parser("list", help="list OAuth clients (partners and services)")
    list_partners.add_argument("--json", action="store_true")
    partners_sub.add_parser("disable", help="refuse new tokens and delete the broker user").add_argument("name")
    partners_sub.add_parser("sync", help="rewrite active partners' broker permissions from their scopes")
    partners.set_defaults(func=_partners)

    seed_parser = sub.add_parser("seed", help="create demo data")
    seed_parser.add_argument(
        "--products", type=int, default=None, help="top the catalog up to this many products (benchmarks; in bulk)"
    )
    seed_parser.add_argument(
        "--orders",
        type=_not_negative,
        default=0,
        help="place this many demo orders through the API and move them along (scripts/up: 300); a re-run "
        "answers the same orders, it does not add more",
    )
    seed_parser.set_defaults(func=_seed)
    dlq = sub.add_parser("dlq", help="dead-letter queues").add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq.add_parser("list", help="the dead-letter queues and their message counts")
    dlq_list.add_argument("--json", action="store_true")
    dlq_list.add_argument("--non-empty", action="store_true", help="only the queues holding dead letters")
    dlq_show = dlq.add_parser("show", help="print dead letters as JSON lines, oldest first (they stay)")
    dlq_show.add_argument("queue")
    dlq_show.add_argument("--limit", type=int, default=20)
    dlq_replay = dlq.add_parser("replay", help="send dead letters back to their work queue")
    dlq_replay.add_argument("queue")
    dlq_replay.add_argument("--id", action="append", help="a message id (repeatable); all messages without it")
    dlq.add_parser("purge", help="delete every dead letter of the queue (asks nothing)").add_argument("queue")
    for parser_ in (dlq_list, dlq_show, dlq_replay):
        parser_.set_defaults(func=_dlq)
    dlq.choices["purge"].set_defaults(func=_dlq)

    sub.add_parser("docs", help="regenerate API and message documents").set_defaults(func=_docs)

    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe can be caught, not at the interpreter's exit
        return status
    except BrokenPipeError:
        # The reader went away (`agora dlq list | head`): stop quietly, as `ls | head` does.
        # Later writes (the interpreter's own flush at exit) go nowhere instead of failing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by it


if __name__ == "__main__":
    sys.exit(main())
