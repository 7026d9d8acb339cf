"""The `emojibot` command line.

Heavy imports (TensorFlow, scikit-learn) happen inside the subcommands that need them, so
`emojibot emojify` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

EXIT_USAGE = 2


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2, never a traceback."""


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _read_stdin_text() -> str:
    raw = sys.stdin.buffer.read()
    text = raw.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in raw:
        print("emojibot: note: stdin was not valid UTF-8; undecodable bytes were replaced", file=sys.stderr)
    return text


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# -- emojify ------------------------------------------------------------------------------
def cmd_emojify(args: argparse.Namespace) -> int:
    from models.catalog import UnknownEmojiError
    from models.ranker import EmptyTextError, TextRanker

    text = _read_stdin_text() if args.text == "-" else args.text
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # undecodable bytes in the argument
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "replace")
        text = raw.decode("utf-8", "replace")
        print("emojibot: note: the text was not valid UTF-8; undecodable bytes were replaced", file=sys.stderr)
    ranker = TextRanker(args.artifacts)
    try:
        result = ranker.rank([text], k=args.top, candidates=args.candidates)[0]
    except EmptyTextError as exc:
        raise CLIError(f'{exc} (for example: emojibot emojify "what a game!")') from exc
    except UnknownEmojiError as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        _print_json(
            {
                "text": text[:200],
                "model_version": ranker.version,
                "emojis": [{"emoji": r.emoji, "score": round(r.score, 4), "fit": round(r.fit, 4)} for r in result],
            }
        )
    else:
        print(" ".join(r.emoji for r in result))
        if args.scores:
            for r in result:
                print(f"  {r.emoji}  score {r.score:+.3f}  fit {r.fit:+.3f}")
    return 0


# -- picture ------------------------------------------------------------------------------
def cmd_picture(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from models.picture import PictureError, PictureModel, decode_picture

    if args.max_mb <= 0:
        raise CLIError("--max-mb must be positive")
    max_bytes = int(args.max_mb * 1024 * 1024)
    if args.path == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
    else:
        if not os.path.isfile(args.path):
            raise CLIError(f"{args.path}: no such file")
        if os.path.getsize(args.path) > max_bytes:
            raise CLIError(f"{args.path}: the file is over the {args.max_mb:g} MB limit (--max-mb)")
        with open(args.path, "rb") as f:
            data = f.read(max_bytes + 1)
    try:  # decode before loading the models: a bad file is refused at once
        picture = decode_picture(data, max_bytes=max_bytes)
    except PictureError as exc:
        raise CLIError(f"{args.path}: {exc}") from exc
    model = PictureModel(args.artifacts, samples=args.samples, seed=args.seed)
    answer = model.answer(picture[None], args.top, args.candidates)[0]
    novel_path = None
    if args.out:
        from models.drawing import EmojiDecoder, to_image

        picture = model.novel_emoji(answer, EmojiDecoder(args.artifacts))
        to_image(picture, scale=args.scale).save(args.out)
        novel_path = args.out
    if args.json:
        _print_json(
            {
                "top": [{"emoji": e, "probability": round(p, 4)} for e, p in answer.top],
                "mode": answer.mode,
                "distinct_emojis": answer.distinct,
                "samples": model.samples,
                "novel_emoji_png": novel_path,
                "model_version": model.version,
            }
        )
    else:
        print(" ".join(e for e, _ in answer.top))
        if args.scores:
            for e, p in answer.top:
                print(f"  {e}  {p:.2f}")
        if novel_path:
            print(f"novel emoji written to {novel_path}")
    return 0


# -- serve and db -------------------------------------------------------------------------
def _settings(args: argparse.Namespace):
    from bot.core.config import SettingsError, load_settings

    overrides = {
        k: v
        for k, v in (
            ("host", getattr(args, "host", None)),
            ("port", getattr(args, "port", None)),
            ("database_url", getattr(args, "database_url", None)),
        )
        if v is not None
    }
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise CLIError(str(exc)) from exc


def cmd_serve(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from bot.core.config import SettingsError
    from bot.serve import serve

    try:
        return serve(_settings(args), artifacts=args.artifacts)
    except SettingsError as exc:
        raise CLIError(str(exc)) from exc


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.store.repository import current_revision, migrate

    settings = _settings(args)
    migrate(settings.database_url, args.revision)
    print(f"database at revision {current_revision(settings.database_url)}")
    return 0


# -- train --------------------------------------------------------------------------------
def cmd_train_vae(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from training.vae import train_vae

    info = train_vae(args.out, epochs=args.epochs, seed=args.seed)
    _print_json(info)
    return 0


def cmd_train_sqam(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from training.sqam import TrainSettings, train_sqam

    _require_data_dir(args.data_dir)
    s = TrainSettings(seed=args.seed)
    if args.epochs is not None:
        if args.epochs < 1:
            raise CLIError("--epochs must be at least 1")
        s.epochs = args.epochs
    for name in (
        "learning_rate", "weight_decay", "ema", "ngram_dropout", "tweeteval_weight", "description_weight", "top_words",
    ):  # fmt: skip
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    for name in ("dropout", "ngram_dim", "scale", "loss"):
        if getattr(args, name) is not None:
            setattr(s.model, name, getattr(args, name))
    if args.no_semantic:
        s.model.use_semantic = False
    if args.no_words:
        s.model.use_words = False
    if args.no_answer_offsets:
        s.model.answer_offsets = False
    if args.max_tweets is not None:
        if args.max_tweets < 1:
            raise CLIError("--max-tweets must be at least 1")
        s.max_tweets = args.max_tweets
    from training.minilm import MiniLMUnavailable

    try:
        info = train_sqam(args.data_dir, args.out, s, codes_dir=args.codes)
    except MiniLMUnavailable as e:
        raise CLIError(str(e)) from None
    _print_json({k: v for k, v in info.items() if k != "history"})
    return 0


def cmd_train_heads(args: argparse.Namespace) -> int:
    from training.heads import HeadSettings, train_heads

    _require_data_dir(args.data_dir)
    s = HeadSettings(calibrate=not args.no_offsets, lexicon=not args.no_lexicon)
    if args.no_sequence:
        s.airline_sequence = None
    if args.max_tweets is not None:
        if args.max_tweets < 1:
            raise CLIError("--max-tweets must be at least 1")
        s.max_tweets = args.max_tweets
    info = train_heads(args.data_dir, args.out, s)  # too few tweets: DataError, one line
    _print_json(info)
    return 0


def cmd_train_wgan(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from training.wgan import WGANSettings, train_wgan

    _require_data_dir(args.data_dir)
    s = WGANSettings(seed=args.seed, sheet_dir=args.sheets)
    for name in (
        "classifier_minutes",
        "classifier_epochs",
        "wgan_epochs",
        "smoothing_k",
        "max_pictures",
        "n_critic",
        "gp_lambda",
    ):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                raise CLIError(f"--{name.replace('_', '-')} must be positive")
            setattr(s, name, value)
    s.reuse_encoder = args.reuse_encoder
    if args.learning_rate is not None:
        if args.learning_rate <= 0:
            raise CLIError("--learning-rate must be positive")
        s.learning_rate = args.learning_rate
    if args.weighting:
        s.weighting = tuple(args.weighting)
    if args.spaces:
        s.spaces = tuple(args.spaces)
    info = train_wgan(args.data_dir, args.out, s)
    _print_json({k: v for k, v in info.items() if k != "variant_histories"})
    return 0


def _require_data_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise CLIError(f"data directory {path!r} does not exist (pass --data-dir, e.g. ../shared/data)")


# -- evaluate -----------------------------------------------------------------------------
def cmd_evaluate_tweeteval(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_tweeteval

    result = evaluate_tweeteval(args.text, args.labels, args.mapping, artifacts=args.artifacts)
    _report(result, args.json)
    return 0


def cmd_evaluate_airline(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_airline

    result = evaluate_airline(args.csv, artifacts=args.artifacts)
    _report(result, args.json)
    return 0


def cmd_evaluate_emojis(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_emojis

    if args.csv is None and (args.data_dir is None or args.split is None):
        raise CLIError("evaluate emojis: give --csv F, or --data-dir D with --split train|val")
    if args.baseline and args.data_dir is None:
        raise CLIError("evaluate emojis: --baseline trains on the whole-catalog tweets: give --data-dir")
    result = evaluate_emojis(
        args.csv,
        artifacts=args.artifacts,
        progress=not args.json,
        data_dir=args.data_dir,
        split=None if args.csv else args.split,
        baseline=args.baseline,
        heads_on_catalog=args.heads_on_catalog,
    )
    _report(result, args.json)
    return 0


def cmd_evaluate_pictures(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from training.evaluate import evaluate_pictures

    try:
        result = evaluate_pictures(
            args.npz,
            artifacts=args.artifacts,
            max_pictures=args.max_pictures,
            progress=not args.json,
            holdout=args.holdout,
            sheet=args.sheet,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    if args.sheet:
        print(f"sample sheet written to {args.sheet}", file=sys.stderr)
    _report(result, args.json)
    return 0


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(result)
    else:
        for k, v in result.items():
            print(f"{k:>16}: {v:.4f}" if isinstance(v, float) else f"{k:>16}: {v}")


# -- generate -----------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    import numpy as np

    from models.catalog import EmojiCatalog
    from models.drawing import EmojiDecoder, sheet, to_image

    dec = EmojiDecoder(args.artifacts)
    if args.code is not None:
        try:
            code = np.asarray([float(x) for x in args.code.replace(",", " ").split()], np.float32)
        except ValueError as exc:
            raise CLIError(f"--code must be {dec.latent_dim} numbers separated by commas") from exc
        if code.shape != (dec.latent_dim,) or not np.isfinite(code).all():
            raise CLIError(f"--code must be {dec.latent_dim} finite numbers, got {code.size}")
        to_image(dec.decode(code)[0], scale=args.scale).save(args.out)
        print(f"wrote {args.out}")
        return 0
    catalog = EmojiCatalog.load()
    rows = [list(dec.decode(dec.random_codes(args.random, seed=args.seed)))]
    for a, b, c in args.grid:
        chars = [catalog.lookup(x).char for x in (a, b, c)]
        grid = dec.decode(dec.abc_grid(*chars, size=args.grid_size))
        rows.extend(list(grid[i : i + args.grid_size]) for i in range(0, len(grid), args.grid_size))
    sheet(rows, scale=args.scale).save(args.out)
    print(f"wrote {args.out}: {args.random} random novel emojis and {len(args.grid)} A/B/C grid(s)")
    return 0


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from exc
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _abc(value: str) -> tuple[str, str, str]:
    parts = value.replace(",", " ").split()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("a grid is three emojis or short names, e.g. 'smile,heart,fire'")
    return parts[0], parts[1], parts[2]


# -- bench --------------------------------------------------------------------------------
def cmd_bench_picture(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from bot.core.bench_picture import bench_picture

    _require_data_dir(args.data_dir)
    npz = os.path.join(args.data_dir, "tinyimagenet_emoji", "train.npz")
    if not os.path.isfile(npz):
        raise CLIError(f"{npz}: no such file (bench picture decodes photos from it)")
    _report(bench_picture(npz, artifacts=args.artifacts, n=args.pictures), args.json)
    return 0


def cmd_bench_slack(args: argparse.Namespace) -> int:
    from bot.adapters.slack.bench import bench_slack

    result = bench_slack(
        args.events,
        args.rate,
        artifacts=args.artifacts,
        fault=args.fault,
        database_url=args.database_url,
        outage_s=args.outage_s,
    )
    _report(result, args.json)
    return 0


def cmd_discord_invite(args: argparse.Namespace) -> int:
    from bot.adapters.discord import invite_url

    if not args.client_id.isdigit():
        raise CLIError("--client-id is the application's numeric id (Developer Portal → General Information)")
    print(invite_url(args.client_id))
    return 0


def cmd_bench_text(args: argparse.Namespace) -> int:
    from bot.core.bench import bench_text

    _require_data_dir(args.data_dir)
    result = bench_text(args.data_dir, artifacts=args.artifacts, seconds=args.seconds, cold_runs=args.cold_runs)
    _report(result, args.json)
    return 0


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emojibot",
        description="An emoji bot for Slack and Discord: rank emojis for text, train and evaluate its models.",
    )
    p.add_argument("--artifacts", help="model artifact folder (default: the shipped one, or $EMOJIBOT_ARTIFACTS)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    e = sub.add_parser("emojify", help="top emojis for a text", description="Rank the catalog's emojis for TEXT.")
    e.add_argument("text", metavar="TEXT", help="the message; '-' reads it from standard input")
    e.add_argument("--top", type=_positive, default=5, help="how many emojis (default 5)")
    e.add_argument("--candidates", nargs="+", metavar="EMOJI", help="rank only these emojis (Unicode or short names)")
    e.add_argument(
        "--scores", action="store_true", help="also print each emoji's score and fit (the cosine, before popularity)"
    )
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_emojify)

    pc = sub.add_parser(
        "picture",
        help="emojis for a picture, and a novel emoji drawn for it",
        description="Answer a picture (JPEG, PNG, WebP, GIF, BMP, TIFF; '-' reads stdin) with "
        "the emojis of its generated distribution and, with --out, a brand-new emoji.",
    )
    pc.add_argument("path", help="picture file, or - for standard input")
    pc.add_argument("--top", type=_positive, default=5, help="how many emojis (5)")
    pc.add_argument("--candidates", nargs="+", metavar="EMOJI", help="rank only these emojis (Unicode or short names)")
    pc.add_argument("--out", help="write the novel emoji as a PNG here")
    pc.add_argument("--scale", type=_positive, default=4, help="upscaling of the 36×36 novel emoji (4)")
    pc.add_argument("--samples", type=_positive, default=50, help="generator samples per picture (50)")
    pc.add_argument("--seed", type=int, default=0)
    pc.add_argument("--max-mb", dest="max_mb", type=float, default=10.0, help="refuse files larger than this (10)")
    pc.add_argument("--scores", action="store_true", help="also print each emoji's probability")
    pc.add_argument("--json", action="store_true", help="print one JSON object")
    pc.set_defaults(func=cmd_picture)

    sv = sub.add_parser(
        "serve",
        help="run the bot (the web playground when no platform token is set)",
        description="Migrate the database and serve the bot. Settings come from EMOJIBOT_* "
        "environment variables or .env (see README).",
    )
    sv.add_argument("--host", help="address to listen on (127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (8080)")
    sv.add_argument("--database-url", dest="database_url", help="sqlite+aiosqlite:///FILE or postgresql+asyncpg://...")
    sv.set_defaults(func=cmd_serve)
    db = sub.add_parser("db", help="database migrations")
    dbsub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    dbu = dbsub.add_parser("upgrade", help="migrate the database to the newest (or the given) revision")
    dbu.add_argument("revision", nargs="?", default="head")
    dbu.add_argument("--database-url", dest="database_url", help="default: $EMOJIBOT_DATABASE_URL or the SQLite file")
    dbu.set_defaults(func=cmd_db_upgrade)

    t = sub.add_parser("train", help="train a model and write it to the artifact folder")
    tsub = t.add_subparsers(dest="model", metavar="MODEL", required=True)
    tv = tsub.add_parser("vae", help="the convolutional VAE over emoji pictures (needs no data dir)")
    tv.add_argument("--epochs", type=int, default=300, help="most epochs; stops early on held-out loss")
    tv.add_argument("--seed", type=int, default=7)
    tv.add_argument("--out", help="artifact folder to write (default: the shipped one)")
    tv.set_defaults(func=cmd_train_vae)
    ts = tsub.add_parser("sqam", help="the Siamese text→emoji model (needs the VAE codes)")
    ts.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    ts.add_argument("--epochs", type=int, help="epochs (default 3; the best on the tune rows is kept)")
    ts.add_argument("--seed", type=int, default=13)
    ts.add_argument("--max-tweets", type=int, help="train on at most this many tweets (quick runs)")
    ts.add_argument("--codes", help="folder with the VAE codes (default: --out)")
    hp = ts.add_argument_group("hyper-parameters (defaults: the shipped model's)")
    hp.add_argument("--learning-rate", dest="learning_rate", type=float, help="peak AdamW rate (2e-3)")
    hp.add_argument("--weight-decay", dest="weight_decay", type=float, help="AdamW decoupled weight decay (0.02)")
    hp.add_argument("--ema", type=float, help="moving average of the weights kept (0.99; 0 = the raw weights)")
    hp.add_argument("--loss", choices=["softmax", "hinge"], help="softmax over the catalog, or the triplet hinge")
    hp.add_argument("--scale", type=float, help="cosine → logit scale (8)")
    hp.add_argument(
        "--tweeteval-weight", dest="tweeteval_weight", type=float, help="TweetEval tweets' weight (default 0: left out)"
    )
    hp.add_argument(
        "--description-weight", dest="description_weight", type=float, help="emoji descriptions' weight (1.0)"
    )
    hp.add_argument("--dropout", type=float, help="dropout before the question dense layer (0.3)")
    hp.add_argument(
        "--top-words", dest="top_words", type=int, help="GloVe's most frequent words in the vocabulary (40000)"
    )
    hp.add_argument("--ngram-dropout", dest="ngram_dropout", type=float, help="n-grams hidden per step (0.3)")
    hp.add_argument("--ngram-dim", dest="ngram_dim", type=int, help="n-gram embedding size (96)")
    hp.add_argument("--no-semantic", action="store_true", help="answer tower over the VAE code alone")
    hp.add_argument("--no-words", action="store_true", help="question tower over the n-grams alone")
    hp.add_argument(
        "--no-answer-offsets",
        action="store_true",
        help="answers from pictures and descriptions alone (no per-emoji offset)",
    )
    ts.add_argument("--out", help="artifact folder to write (default: the shipped one)")
    ts.set_defaults(func=cmd_train_sqam)
    th = tsub.add_parser(
        "heads",
        help="linear n-gram heads for the labelled emoji sets (after `train sqam`)",
        description="Train the TweetEval and airline heads and tune how they join the SQAM.",
    )
    th.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    th.add_argument("--max-tweets", type=int, help="train on at most this many tweets (quick runs)")
    th.add_argument("--no-offsets", action="store_true", help="do not fit per-emoji macro-F1 offsets")
    th.add_argument("--no-lexicon", action="store_true", help="n-grams only, without the VADER sentiment columns")
    th.add_argument(
        "--no-sequence", action="store_true", help="airline head without its BiLSTM: the linear models alone"
    )
    th.add_argument("--out", help="artifact folder to read the SQAM from and write to (default: the shipped one)")
    th.set_defaults(func=cmd_train_heads)

    tw = tsub.add_parser(
        "wgan",
        help="the picture models: image encoder + baseline CNN, then the WGAN-GP",
        description="Train the image encoder (as a CNN classifier, the baseline), then "
        "conditional WGAN-GPs over its features for several target spaces and weightings; "
        "the best on the held-out photos ships.",
    )
    tw.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    tw.add_argument("--classifier-minutes", dest="classifier_minutes", type=float, help="encoder budget (26)")
    tw.add_argument("--classifier-epochs", dest="classifier_epochs", type=int, help="encoder epochs at most (14)")
    tw.add_argument("--wgan-epochs", dest="wgan_epochs", type=int, help="epochs of each WGAN variant (25)")
    tw.add_argument("--n-critic", dest="n_critic", type=int, help="critic steps per generator step (5)")
    tw.add_argument("--gp-lambda", dest="gp_lambda", type=float, help="gradient penalty weight (10)")
    tw.add_argument("--smoothing-k", dest="smoothing_k", type=float, help="k of exp(−k·freq) weights (20)")
    tw.add_argument(
        "--weighting",
        nargs="+",
        choices=["expsmooth", "tfidf", "none"],
        help="per-example weightings to compare (all three)",
    )
    tw.add_argument(
        "--spaces",
        nargs="+",
        choices=["sqam", "vae", "emoji2vec"],
        help="target embedding spaces to compare (all three; the first is used for the weightings)",
    )
    tw.add_argument("--max-pictures", dest="max_pictures", type=int, help="use at most this many photos")
    tw.add_argument(
        "--reuse-encoder",
        dest="reuse_encoder",
        action="store_true",
        help="keep the shipped image encoder and CNN baseline; train only the WGAN stage",
    )
    tw.add_argument("--learning-rate", dest="learning_rate", type=float, help="Adam rate of G and D (4e-4)")
    tw.add_argument("--sheets", default="wgan_samples", help="folder for per-epoch sample sheets (wgan_samples)")
    tw.add_argument("--seed", type=int, default=7)
    tw.add_argument("--out", help="artifact folder to write (default: the shipped one)")
    tw.set_defaults(func=cmd_train_wgan)

    ev = sub.add_parser("evaluate", help="score the shipped models on labelled data")
    evsub = ev.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    et = evsub.add_parser("tweeteval", help="rank the 20 TweetEval emojis for each line")
    et.add_argument("--text", required=True, help="one tweet per line")
    et.add_argument("--labels", required=True, help="one label id per line")
    et.add_argument("--mapping", help="mapping.txt (id, emoji, name); default: TweetEval's 20 emojis")
    et.add_argument("--json", action="store_true")
    et.set_defaults(func=cmd_evaluate_tweeteval)
    ea = evsub.add_parser("airline", help="rank 🎉 😈 😡 for each airline tweet")
    ea.add_argument("--csv", required=True, help="CSV with airline_sentiment and text columns")
    ea.add_argument("--json", action="store_true")
    ea.set_defaults(func=cmd_evaluate_airline)
    ee = evsub.add_parser(
        "emojis",
        help="rank the whole catalog for each text: top-1/top-5, MRR, macro-recall@5, distinct top-1",
        description="F has the columns text,emojis; emojis is a space-separated list of the emojis a person "
        "used with the text, in any form (with or without U+FE0F, skin-toned, :short_name:). Rows with no "
        "emoji of the catalog are counted in rows_skipped.",
    )
    ee.add_argument("--csv", help="CSV with a text,emojis header")
    ee.add_argument("--data-dir", dest="data_dir", help="the training data (for --split and --baseline)")
    ee.add_argument(
        "--split",
        choices=["train", "val"],
        help="score one side of twemoji_tweets/tweets.csv, split once with a fixed seed (80/20)",
    )
    ee.add_argument(
        "--baseline",
        choices=["popularity", "svm"],
        help="score with a yardstick trained on the train side instead of the model: the five most used "
        "emojis, or TF-IDF + LinearSVC over every emoji",
    )
    ee.add_argument(
        "--heads-on-catalog",
        action="store_true",
        help="add the TweetEval and airline heads to the whole-catalog scores too (an ablation: the bot does not)",
    )
    ee.add_argument("--json", action="store_true")
    ee.set_defaults(func=cmd_evaluate_emojis)

    ep = evsub.add_parser("pictures", help="top-1/top-5, distinct modes of the picture model on labelled photos")
    ep.add_argument("--npz", required=True, help="photos in the layout of tinyimagenet_emoji/train.npz")
    ep.add_argument("--max-pictures", dest="max_pictures", type=int, help="score at most this many photos")
    ep.add_argument(
        "--holdout",
        action="store_true",
        help="score only the photos training held out (the file must be the one trained on)",
    )
    ep.add_argument("--sheet", help="also write a PNG: one photo per class, its top emojis, the novel emoji")
    ep.add_argument("--json", action="store_true")
    ep.set_defaults(func=cmd_evaluate_pictures)

    g = sub.add_parser("generate", help="draw novel emojis with the VAE decoder")
    g.add_argument("--out", required=True, help="PNG file to write")
    g.add_argument("--code", help="decode this 16-d code (comma-separated) instead of a sheet")
    g.add_argument("--random", type=_positive, default=12, help="random novel emojis in the first row")
    g.add_argument(
        "--grid",
        type=_abc,
        action="append",
        metavar="A,B,C",
        help="a 2-D grid A + u(B−A) + v(C−A); repeatable (default: two grids)",
    )
    g.add_argument("--grid-size", type=_positive, default=6)
    g.add_argument("--scale", type=_positive, default=2, help="upscaling of the 36×36 pictures")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)

    b = sub.add_parser("bench", help="measure speed and memory")
    bsub = b.add_subparsers(dest="what", metavar="WHAT", required=True)
    bt = bsub.add_parser("text", help="text ranking: latency, throughput, cold start, RSS; vs TF-IDF + SVM")
    bt.add_argument("--data-dir", required=True, help="data folder (TweetEval texts, and to train the baseline)")
    bt.add_argument("--seconds", type=float, default=5.0, help="how long each throughput run lasts (5)")
    bt.add_argument("--cold-runs", type=_positive, default=3, help="cold starts to time (3)")
    bt.add_argument("--json", action="store_true")
    bt.set_defaults(func=cmd_bench_text)
    bs = bsub.add_parser("slack", help="events/s and event → reactions.add latency through a fake Slack on loopback")
    bs.add_argument("--events", type=_positive, default=1000, help="events to send (1000)")
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
    dc = sub.add_parser("discord", help="Discord helpers")
    dcsub = dc.add_subparsers(dest="discord_command", metavar="COMMAND", required=True)
    di = dcsub.add_parser("invite", help="print the URL that adds the bot to a server with the permissions it needs")
    di.add_argument("--client-id", dest="client_id", required=True, help="the application's id")
    di.set_defaults(func=cmd_discord_invite)
    bp = bsub.add_parser("picture", help="picture answering: latency per picture (decode included), pictures/s")
    bp.add_argument("--data-dir", required=True, help="data folder (photos from tinyimagenet_emoji/train.npz)")
    bp.add_argument("--pictures", type=_positive, default=300, help="pictures to time (300)")
    bp.add_argument("--json", action="store_true")
    bp.set_defaults(func=cmd_bench_picture)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is cmd_generate and not args.grid and args.code is None:
        args.grid = [("😀", "🐱", "❤️"), ("☀️", "🌧️", "🎄")]
    from models.artifacts import ArtifactError
    from models.catalog import UnknownEmojiError
    from training.data import DataError

    try:
        return int(args.func(args) or 0)
    except (CLIError, ArtifactError, DataError, UnknownEmojiError) as exc:
        print(f"emojibot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("emojibot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        print(f"emojibot: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # one line for the user; the traceback on request
        if os.environ.get("EMOJIBOT_DEBUG"):
            raise
        print(f"emojibot: error: {type(exc).__name__}: {exc} (set EMOJIBOT_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
