"""The ``focus-api`` command line: serve, stdio, call, load, demo.

Flags override ``FOCUS_API_*`` environment variables; the Settings object is built here, once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import duckdb
from pydantic import ValidationError

from server import logging_setup
from server.settings import Settings
from server.store.generations import LEGACY_FILE

_ENGINE_OPTIONS = ("engine", "spark_remote", "spark_database", "spark_table", "spark_key")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    names = ("data_dir", "host", "rest_port", "mcp_port", "upstream_url", "sync_every_seconds", *_ENGINE_OPTIONS)
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "sync", None):
        overrides["sync"] = ",".join(args.sync)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"focus-api: invalid configuration: {problems}", file=sys.stderr)
        raise SystemExit(2) from None


def _cmd_serve(args: argparse.Namespace) -> int:
    from server.app import StartupRefused, serve

    settings = _settings(args)
    logging_setup.configure(settings.log_level, json=settings.log_json)
    try:
        anyio.run(serve, settings)
    except StartupRefused as exc:
        print(f"focus-api: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_stdio(args: argparse.Namespace) -> int:
    from server.app import serve_stdio

    settings = _settings(args)
    logging_setup.configure(settings.log_level, json=settings.log_json)
    anyio.run(serve_stdio, settings)
    return 0


def _cmd_call(args: argparse.Namespace) -> int:
    from server.auth import LOCAL
    from server.exports.service import ExportService
    from server.pipeline import Caller, Pipeline
    from server.services import running_services
    from tools import wire
    from tools.context import REST_LIMITS
    from tools.errors import FocusApiError, InvalidArgument
    from tools.exports import ExportJob, with_links

    settings = _settings(args)
    logging_setup.configure("warning")

    async def run() -> Any:
        try:
            raw = json.loads(args.json)
        except ValueError as exc:
            return InvalidArgument(f"--json is not valid JSON: {exc}")
        if not isinstance(raw, dict):
            return InvalidArgument("--json must be a JSON object of the tool's parameters")
        async with running_services(settings) as services:
            caller = Caller(LOCAL, "cli", REST_LIMITS, settings.base_url())
            try:
                output = await Pipeline(services).invoke(args.tool, raw, caller)
                # An in-process export lives only as long as this process: wait for it to finish.
                if isinstance(output, ExportJob) and isinstance(services.exports, ExportService):
                    job = await services.exports.wait(output.jobId, LOCAL.name, timeout=24 * 3600)
                    output = with_links(job, settings.base_url())
            except FocusApiError as exc:  # returned, not raised: the services' task group would wrap it
                return exc
            return output.model_dump(mode="python", warnings=False)

    result = anyio.run(run)
    if isinstance(result, FocusApiError):
        sys.stdout.write(json.dumps(result.body()) + "\n")
        return 1
    sys.stdout.write(wire.dumps(result).decode() + "\n")
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    from rich.console import Console

    from server.cloud.objects import is_cloud_url
    from server.cloud.sync import sync_sources
    from server.store.db import Store
    from server.store.load_console import BarProgress, print_report
    from server.store.loader import LoadSummary, expand_paths, load_files
    from tools.errors import FocusApiError

    settings = _settings(args)
    # Logs go to stderr (a --json report owns stdout): e.g. that the load waits for another one.
    logging_setup.configure(settings.log_level, json=settings.log_json)
    urls = [p for p in args.paths if is_cloud_url(p)]
    try:
        paths = expand_paths([p for p in args.paths if not is_cloud_url(p)])
    except FileNotFoundError as exc:
        print(f"focus-api load: {exc}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {"strict": args.strict, "on_bad_rows": args.on_bad_rows}
    try:
        with Store(settings.data_dir, memory_limit=settings.memory_limit) as store:
            # The bar goes to stderr, and only to a terminal: a pipe or a log gets the report alone.
            err = Console(stderr=True)
            if not paths:
                summary = LoadSummary([])
            elif err.is_terminal and not args.json:
                with BarProgress(paths, err) as bar:
                    summary = load_files(store, paths, progress=bar, **options)
            else:
                summary = load_files(store, paths, **options)
            if urls:
                # Cloud exports load by their providers' manifests (server/cloud), all or nothing.
                cloud = sync_sources(store, urls, settings, only_changed=False, **options)
                summary = LoadSummary(summary.files + cloud.reports)
    except FocusApiError as exc:
        print(f"focus-api load: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    published = _publish_if_spark(settings) if summary.ok and (paths or urls) else None
    if args.json:
        print(json.dumps(summary.as_json() | ({"spark": published} if published else {}), indent=2, default=str))
    else:
        out = Console(highlight=False)
        # Not a terminal (a pipe, a log): no colour, and lines wide enough not to fold paths.
        print_report(summary, out if out.is_terminal else Console(highlight=False, width=200))
        if published:
            print(f"published to Spark ({settings.spark_database}): {json.dumps(published)}")
    return 0 if summary.ok else 1


def _publish_if_spark(settings: Settings) -> dict[str, int] | None:
    """With --engine spark, copy what the load changed to the cluster (server/spark/layout.py)."""
    if settings.engine != "spark":
        return None
    from server.spark.layout import Publisher
    from server.spark.session import connect
    from server.store.db import Store

    assert settings.spark_remote is not None
    session = connect(settings.spark_remote, settings.spark_connect_timeout_seconds)
    try:
        # The writers' lock: one publish at a time, and never of a half-written load.
        with Store(settings.data_dir, memory_limit=settings.memory_limit) as ledger:
            report = Publisher(session, settings.spark_database).publish(ledger)
            ledger.abandon()  # read only: no new generation
        return report.as_dict()
    finally:
        session.stop()


def _cmd_publish(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logging_setup.configure(settings.log_level, json=settings.log_json)
    if settings.engine != "spark":
        print("focus-api publish: copies the data dir to a Spark cluster: give --engine spark", file=sys.stderr)
        return 2
    print(json.dumps(_publish_if_spark(settings)))
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    from server.cloud.sync import run_sync
    from tools.errors import FocusApiError

    settings = _settings(args)
    logging_setup.configure(settings.log_level, json=settings.log_json)
    try:
        result = run_sync(settings, args.sources, strict=args.strict, on_bad_rows=args.on_bad_rows)
    except FocusApiError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": exc.body()}, indent=2, default=str))
        print(f"focus-api sync: {exc.code}: {exc.message} (nothing of this sync was stored)", file=sys.stderr)
        return 1
    published = _publish_if_spark(settings) if result.loaded else None
    if args.json:
        spark = {"spark": published} if published else {}
        print(json.dumps({"ok": True, **result.as_json(), **spark}, indent=2, default=str))
        return 0
    for unit in result.units:
        if unit.status == "loaded":
            print(f"loaded    {unit.label}: {len(unit.files)} files, {unit.rows} rows ({unit.replaced_rows} replaced)")
        else:
            print(f"{unit.status:<9} {unit.label}")
    rows = sum(u.rows for u in result.loaded)
    print(f"{len(result.loaded)} of {len(result.units)} delivery units loaded, {rows} rows")
    if published:
        print(f"published to Spark ({settings.spark_database}): {json.dumps(published)}")
    return 0


def _duration(text: str) -> float:
    """Seconds in ``6h``, ``30m``, ``45s``, ``1d`` or a plain number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        seconds = float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 6h, 30m or 90s") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the interval must be positive")
    return seconds


def _cmd_demo(args: argparse.Namespace) -> int:
    from server.store.db import Store
    from server.store.demo import generate_demo

    settings = _settings(args)
    logging_setup.configure(settings.log_level, json=settings.log_json)
    with Store(settings.data_dir, memory_limit=settings.memory_limit) as store:
        summary = generate_demo(store, rows=args.rows, seed=args.seed)
    loaded = {
        dataset: sum(f.rows for f in summary.files if f.dataset == dataset and f.status == "loaded")
        for dataset in ("CostAndUsage", "ContractCommitment")
    }
    print(
        f"demo data: {loaded['CostAndUsage']} Cost and Usage rows and {loaded['ContractCommitment']} Contract "
        f"Commitment rows loaded into {settings.data_dir}"
    )
    published = _publish_if_spark(settings) if summary.ok else None
    if published:
        print(f"published to Spark ({settings.spark_database}): {json.dumps(published)}")
    return 0 if summary.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focus-api", description="FinOps FOCUS 1.3 data over MCP and REST.")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, help="data directory (default: FOCUS_API_DATA_DIR or per-user)")

    def upstream(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--upstream",
            dest="upstream_url",
            metavar="URL",
            help="serve this remote FOCUS API instead of the store (FOCUS_API_UPSTREAM_URL); its bearer comes "
            "from FINOPS_FOUNDATION_TOKEN",
        )

    def engine(p: argparse.ArgumentParser, *, serving: bool) -> None:
        p.add_argument("--engine", choices=["duckdb", "spark"], help="query engine (FOCUS_API_ENGINE; default duckdb)")
        p.add_argument("--spark-remote", metavar="sc://HOST:PORT", help="Spark Connect server (FOCUS_API_SPARK_REMOTE)")
        p.add_argument("--spark-database", metavar="NAME", help="focus-api's tables on Spark (default focus_api)")
        if serving:
            p.add_argument("--spark-table", metavar="TABLE", help="serve this existing FOCUS table instead")
            p.add_argument("--spark-key", metavar="COLUMN", help="the unique integer ordering key of --spark-table")

    serve = sub.add_parser("serve", help="REST on :8080 and MCP streamable HTTP on :9090")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--rest-port", type=int)
    serve.add_argument("--mcp-port", type=int)
    serve.add_argument(
        "--sync",
        action="append",
        metavar="SOURCE",
        help="sync this cloud export (s3://, az://, gs://) in the background while serving; repeatable "
        "(FOCUS_API_SYNC, comma-separated)",
    )
    serve.add_argument(
        "--sync-every",
        dest="sync_every_seconds",
        type=_duration,
        metavar="INTERVAL",
        help="time between background syncs, e.g. 6h (default), 30m, 90s",
    )
    data_dir(serve)
    engine(serve, serving=True)
    upstream(serve)
    serve.set_defaults(func=_cmd_serve)

    stdio = sub.add_parser("stdio", help="MCP over stdio (for desktop clients)")
    data_dir(stdio)
    engine(stdio, serving=True)
    upstream(stdio)
    stdio.set_defaults(func=_cmd_stdio)

    call = sub.add_parser("call", help="run one tool in process and print its output as JSON")
    call.add_argument("tool")
    call.add_argument("--json", default="{}", help="the tool's arguments as a JSON object")
    data_dir(call)
    engine(call, serving=True)
    upstream(call)
    call.set_defaults(func=_cmd_call)

    load = sub.add_parser(
        "load", help="load FOCUS CSV/Parquet files, folders or globs, or cloud exports (s3://, az://, gs:// URLs)"
    )
    load.add_argument("paths", nargs="+", metavar="PATH")
    load.add_argument("--json", action="store_true", help="print a machine-readable summary")
    load.add_argument(
        "--strict",
        action="store_true",
        help="refuse every quirk of real exports with its rule (validator strictness) instead of normalising it",
    )
    load.add_argument(
        "--on-bad-rows",
        choices=["refuse", "quarantine"],
        default="refuse",
        help="a row that cannot be loaded exactly refuses its whole file (default), or is written to a rejects "
        "file in the data dir while the other rows load (their billing periods then read Partial)",
    )
    data_dir(load)
    engine(load, serving=False)
    load.set_defaults(func=_cmd_load, writes=True)

    sync = sub.add_parser("sync", help="load what is new or changed in cloud exports since the last sync")
    sync.add_argument("sources", nargs="+", metavar="SOURCE", help="s3://, az:// or gs:// export URL")
    sync.add_argument("--json", action="store_true", help="print a machine-readable summary")
    sync.add_argument("--strict", action="store_true", help="as for load")
    sync.add_argument("--on-bad-rows", choices=["refuse", "quarantine"], default="refuse", help="as for load")
    data_dir(sync)
    engine(sync, serving=False)
    sync.set_defaults(func=_cmd_sync, writes=True)

    demo = sub.add_parser("demo", help="generate and load the deterministic demo dataset")
    demo.add_argument("--rows", type=int, default=50_000)
    demo.add_argument("--seed", type=int, default=42)
    data_dir(demo)
    engine(demo, serving=False)
    demo.set_defaults(func=_cmd_demo, writes=True)

    publish = sub.add_parser("publish", help="copy the data dir's store to the Spark cluster (--engine spark)")
    data_dir(publish)
    engine(publish, serving=False)
    publish.set_defaults(func=_cmd_publish)
    return parser


def _write_failed(command: str, exc: BaseException) -> str:
    """A writer stopped by the machine (disk full, a file-size limit, I/O): nothing of it was published."""
    return (
        f"focus-api {command}: stopped by an I/O error, and nothing of it was published: {exc}. The data served "
        "is unchanged; fix the cause (free disk space in the data dir) and run it again."
    )


def _data_dir_busy(exc: BaseException) -> bool:
    """DuckDB refused to open an earlier release's single-file store because that release's process holds it."""
    return isinstance(exc, duckdb.IOException) and "Conflicting lock" in str(exc)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from tools.errors import EngineError

    try:
        code = args.func(args)
    except EngineError as exc:  # the Spark cluster refused or is unreachable: say so, without a traceback
        print(f"focus-api {args.command}: {exc.code}: {exc.message}", file=sys.stderr)
        code = 2
    except (OSError, duckdb.Error) as exc:
        if _data_dir_busy(exc):
            print(
                f"focus-api: this data dir's {LEGACY_FILE} is open in a process of an earlier focus-api release "
                f"({exc}). Stop that `focus-api serve`/`stdio` (or the desktop client that started it) once: the "
                "data dir then moves to the live store layout, which any number of processes share.",
                file=sys.stderr,
            )
            code = 2
        elif getattr(args, "writes", False):
            # The store's writer abandoned its generation (``Store.__exit__``): say so, without a traceback.
            print(_write_failed(args.command, exc), file=sys.stderr)
            code = 1
        else:
            raise
    sys.exit(code)
