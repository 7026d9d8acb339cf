"""`bench text|slack|picture|retrain`: speed, memory and learning, measured."""

from __future__ import annotations

import argparse
import os

from bot.cli.common import (
    CLIError,
    positive,
    progress_printer,
    quiet_tensorflow,
    report,
    require_data_dir,
)


def cmd_bench_text(args: argparse.Namespace) -> int:
    from bot.bench.text import bench_text

    require_data_dir(args.data_dir)
    result = bench_text(args.data_dir, artifacts=args.artifacts, seconds=args.seconds, cold_runs=args.cold_runs)
    report(result, args.json)
    return 0


def cmd_bench_slack(args: argparse.Namespace) -> int:
    from bot.bench.slack import bench_slack

    result = bench_slack(
        args.events,
        args.rate,
        artifacts=args.artifacts,
        fault=args.fault,
        database_url=args.database_url,
        outage_s=args.outage_s,
    )
    report(result, args.json)
    return 0


def cmd_bench_picture(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from bot.bench.picture import bench_picture

    require_data_dir(args.data_dir)
    npz = os.path.join(args.data_dir, "tinyimagenet_emoji", "train.npz")
    if not os.path.isfile(npz):
        raise CLIError(f"{npz}: no such file (bench picture decodes photos from it)")
    report(bench_picture(npz, artifacts=args.artifacts, n=args.pictures), args.json)
    return 0


def cmd_bench_retrain(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from bot.bench.retrain import bench_retrain

    require_data_dir(args.data_dir)
    progress = progress_printer(not args.json)
    result = bench_retrain(args.data_dir, artifacts=args.artifacts, events=args.events, progress=progress)
    report(result, args.json)
    return 0


def register(sub) -> None:
    b = sub.add_parser("bench", help="measure speed and memory")
    bsub = b.add_subparsers(dest="what", metavar="WHAT", required=True)
    bt = bsub.add_parser("text", help="text ranking: latency, throughput, cold start, RSS; vs TF-IDF + SVM")
    bt.add_argument("--data-dir", required=True, help="data folder (TweetEval texts, and to train the baseline)")
    bt.add_argument("--seconds", type=float, default=5.0, help="how long each throughput run lasts (5)")
    bt.add_argument("--cold-runs", type=positive, default=3, help="cold starts to time (3)")
    bt.add_argument("--json", action="store_true")
    bt.set_defaults(func=cmd_bench_text)
    bs = bsub.add_parser("slack", help="events/s and event → reactions.add latency through a fake Slack on loopback")
    bs.add_argument("--events", type=positive, default=1000, help="events to send (1000)")
    bs.add_argument("--rate", type=float, default=150.0, help="events per second to send (150)")
    bs.add_argument(
        "--fault",
        choices=["db-outage", "sigterm"],
        help="in the middle of the run: cut the PostgreSQL store off for --outage-s seconds, "
        "or shut the bot down as SIGTERM does and start a new one",
    )
    bs.add_argument("--outage-s", type=float, default=5.0, help="how long the database is down (5)")
    bs.add_argument(
        "--database-url",
        help="the store (default: a temporary SQLite file; PostgreSQL's `test` database on "
        "127.0.0.1:5432 for --fault db-outage)",
    )
    bs.add_argument("--json", action="store_true")
    bs.set_defaults(func=cmd_bench_slack)

    bp = bsub.add_parser("picture", help="picture answering: latency per picture (decode included), pictures/s")
    bp.add_argument("--data-dir", required=True, help="data folder (photos from tinyimagenet_emoji/train.npz)")
    bp.add_argument("--pictures", type=positive, default=300, help="pictures to time (300)")
    bp.add_argument("--json", action="store_true")
    bp.set_defaults(func=cmd_bench_picture)

    br = bsub.add_parser(
        "retrain", help="learning from reactions: time to build triplets and retrain on N feedback events, and the "
        "validation figures before and after",
    )  # fmt: skip
    br.add_argument("--data-dir", required=True, help="data folder (TweetEval train tweets as the feedback)")
    br.add_argument("--events", type=positive, default=10_000, help="reactions people add (10000)")
    br.add_argument("--json", action="store_true")
    br.set_defaults(func=cmd_bench_retrain)
