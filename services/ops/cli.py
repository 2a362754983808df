"""`cityops` command: run the whole system, or one service, prepare a deployment, report KPIs."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

from services.common import logs
from services.common.config import ROOT, Settings
from services.district.kpis import cli as kpi_cli
from services.ops import deadletters, keys, tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cityops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="everything in the foreground (embedded Kafka/PostgreSQL if unset)")
    sub.add_parser("bootstrap", help="migrations, reference data, topics")
    sub.add_parser("district", help="the district centre service")
    sub.add_parser("street", help="the reference street platform service")
    sub.add_parser("hotspots", help="the hotspot counting and detection loops, on their own")
    kpi_cli.add_arguments(
        sub.add_parser("kpis", help="closed-loop KPIs of a period, their trend, the ranking")
    )
    tokens.add_arguments(sub.add_parser("token", help="operator API tokens"))
    keys.add_arguments(sub.add_parser("keys", help="the phone key ring: rotate"))
    deadletters.add_arguments(
        sub.add_parser("deadletter", help="dead letters: list, show, replay after a fix")
    )
    args = parser.parse_args(argv)
    settings = Settings()
    logs.setup(args.command, settings.log_level)
    if args.command == "run":
        sys.exit(run_all(settings))
    if args.command == "bootstrap":
        from services.ops.bootstrap import bootstrap

        asyncio.run(bootstrap(settings))
    elif args.command == "district":
        from services.common.http import run
        from services.district.app import create_app

        run(create_app(settings), "district", settings.http_host, settings.district_port)
    elif args.command == "street":
        from services.common.http import run
        from services.street.app import create_app as create_street

        run(create_street(settings), "street", settings.http_host, settings.street_port)
    elif args.command == "hotspots":
        from services.common.http import run
        from services.district.hotspots.service import create_app as create_hotspots

        run(create_hotspots(settings), "hotspots", settings.http_host, settings.hotspots_port)
    elif args.command == "kpis":
        sys.exit(asyncio.run(kpi_cli.main(settings, args)))
    elif args.command == "token":
        sys.exit(asyncio.run(tokens.main(settings, args)))
    elif args.command == "keys":
        sys.exit(asyncio.run(keys.main(settings, args)))
    elif args.command == "deadletter":
        sys.exit(asyncio.run(deadletters.main(settings, args)))


def run_all(settings: Settings) -> int:
    """Start embedded dependencies if needed, bootstrap, then supervise every service."""
    from services.devstack import EmbeddedKafka, EmbeddedPostgres
    from services.ops.bootstrap import bootstrap

    _stop_with_parent()
    stack: list[EmbeddedKafka | EmbeddedPostgres] = []
    env = dict(os.environ)
    try:
        if not settings.database_url:
            pg = EmbeddedPostgres(ROOT / ".cityops" / "pgdata")
            stack.append(pg)
            env["CITYOPS_DATABASE_URL"] = asyncio.run(pg.create_database("cityops"))
            print(f"cityops: embedded PostgreSQL at {env['CITYOPS_DATABASE_URL']}", flush=True)
        if not settings.kafka_bootstrap:
            kafka = EmbeddedKafka()
            stack.append(kafka)
            env["CITYOPS_KAFKA_BOOTSTRAP"] = kafka.bootstrap
            # it answers a fetch only when the wait expires, and delays joins by the session
            env.setdefault("CITYOPS_FETCH_MAX_WAIT_MS", "10")
            env.setdefault("CITYOPS_SESSION_TIMEOUT_MS", "2000")
            print(
                f"cityops: embedded Kafka-protocol broker (tansu) at {kafka.bootstrap}", flush=True
            )
        settings = dataclasses.replace(
            settings,
            database_url=env["CITYOPS_DATABASE_URL"],
            kafka_bootstrap=env["CITYOPS_KAFKA_BOOTSTRAP"],
        )
        asyncio.run(bootstrap(settings))
        # the hotspot loops in a process of their own: a round never holds up the intake
        env.setdefault("CITYOPS_HOTSPOTS_IN_DISTRICT", "0")
        demo = asyncio.run(tokens.write_demo_tokens(settings))
        print(f"cityops: demo API tokens in {demo.relative_to(ROOT)}", flush=True)
        return _supervise(_children(env), env)
    finally:
        for dep in reversed(stack):
            dep.stop()


def _children(env: dict[str, str]) -> list[list[str]]:
    cityops = [sys.executable, "-m", "services.ops.cli"]
    children = [[*cityops, "district"], [*cityops, "street"]]
    if env.get("CITYOPS_HOTSPOTS_IN_DISTRICT") == "0":
        children.append([*cityops, "hotspots"])
    if env.get("CITYOPS_DEMO_FEED", "1") != "0":
        children.append([sys.executable, str(Path(ROOT, "scripts", "demo_feed.py"))])
    return children


def _stop_with_parent() -> None:
    """`make` does not pass SIGTERM on to its recipe: get SIGTERM when the parent dies too."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: Ctrl-C still reaches the whole process group


def _supervise(commands: list[list[str]], env: dict[str, str]) -> int:
    """Run the children until Ctrl-C/SIGTERM or until one exits; then stop them all."""
    procs = [subprocess.Popen(c, env=env, cwd=ROOT) for c in commands]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        while not stopping:
            for p in procs:
                if p.poll() is not None:
                    print(f"cityops: {p.args!r} exited with {p.returncode}", flush=True)
                    code, stopping = p.returncode or 1, True
            if not stopping:
                try:
                    procs[0].wait(0.5)
                except subprocess.TimeoutExpired:
                    pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    return code


if __name__ == "__main__":
    main()
