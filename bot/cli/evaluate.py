"""`evaluate tweeteval|airline|emojis|pictures`: score the models on labelled data."""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import (
    CLIError,
    fit_value,
    positive,
    quiet_tensorflow,
    report,
    share,
)
from models.reactions import AUTO_REACT_COUNT, AUTO_REACT_THRESHOLD


def cmd_evaluate_tweeteval(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_tweeteval

    if (args.text is None) != (args.labels is None):
        raise CLIError("evaluate tweeteval: --text and --labels go together")
    if args.text is None and (args.data_dir is None or args.split is None):
        raise CLIError("evaluate tweeteval: give --text F --labels F, or --data-dir D with --split train|val")
    if args.baseline and args.data_dir is None:
        raise CLIError("evaluate tweeteval: --baseline trains on TweetEval train: give --data-dir")
    result = evaluate_tweeteval(
        args.text,
        args.labels,
        args.mapping,
        artifacts=args.artifacts,
        offsets=not args.no_offsets,
        baseline=args.baseline,
        data_dir=args.data_dir,
        split=None if args.text else args.split,
    )
    report(result, args.json)
    return 0


def cmd_evaluate_airline(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_airline

    if args.csv is None and args.data_dir is None:
        raise CLIError("evaluate airline: give --csv F, or --data-dir D for its airline tweets held out of training")
    if args.baseline and args.data_dir is None:
        raise CLIError("evaluate airline: --baseline trains on the airline tweets off the hold-out: give --data-dir")
    result = evaluate_airline(args.csv, artifacts=args.artifacts, data_dir=args.data_dir, baseline=args.baseline)
    report(result, args.json)
    return 0


# The parts of whole-catalog ranking `evaluate emojis` can leave out (`--no-…`), as
# models.ranker.Terms names them.
ABLATIONS = {
    "names": "leave the emoji-name match out (and with it the name slot)",
    "catalog_head": "leave the catalog head (linear n-gram model) out "
    "(with --no-names and --no-sentence: the SQAM alone)",
    "sentence": "leave the sentence term out: the whole-sentence encoder distilled into a small network",
    "prior": "leave the popularity mix out: rank by the sum of the terms alone",
    "name_slot": "leave the name slot out: no fifth place for an emoji the text names",
    "meanings": "leave the meaning match out: words near an emoji's names in meaning (married → 💒)",
    "grave": "leave laughing and partying emojis where they rank for a message about a death, a grave illness "
    "or a disaster (the bot holds them back)",
    "complaint": "leave adoring, grinning and party emojis (😍 😘 😊 🎉 …) where they rank for a message that "
    "reads negative (the bot holds them back)",
    "opposite": "leave an emoji's opposite where it ranks for a message that names the emoji (👎 for "
    '"great job 👍"; the bot holds it back)',
}


def cmd_evaluate_emojis(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_emojis

    if args.csv is None and (args.data_dir is None or args.split is None):
        raise CLIError("evaluate emojis: give --csv F, or --data-dir D with --split train|val|tune")
    if args.emojis_in_text and args.csv is None:
        raise CLIError("evaluate emojis: --emojis-in-text reads the texts of a CSV: give --csv F")
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
        emojis_in_text=args.emojis_in_text,
        react_count=args.react_count,
        react_threshold=args.react_threshold,
        never=args.never,
        read_at=args.read_at,
        **{part: not getattr(args, f"no_{part}") for part in ABLATIONS},
    )
    report(result, args.json)
    return 0


def cmd_evaluate_pictures(args: argparse.Namespace) -> int:
    quiet_tensorflow()
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
    report(result, args.json)
    return 0


def register(sub) -> None:
    ev = sub.add_parser("evaluate", help="score the shipped models on labelled data")
    evsub = ev.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    et = evsub.add_parser(
        "tweeteval",
        help="rank the 20 TweetEval emojis for each line",
        description="Rank TweetEval's 20 emojis (or a mapping's) for each tweet of a text/labels pair of files, or "
        "for the tweets of one side of the whole-catalog split (--data-dir D --split val) whose one emoji is one of "
        "them: tweets of another collection. Prints macro_f1, accuracy, top5_accuracy.",
    )
    et.add_argument("--text", help="one tweet per line")
    et.add_argument("--labels", help="one label id per line")
    et.add_argument("--mapping", help="mapping.txt (id, emoji, name); default: TweetEval's 20 emojis")
    et.add_argument("--data-dir", dest="data_dir", help="the data folder: for --split, and for --baseline")
    et.add_argument(
        "--split",
        choices=["train", "val"],
        help="with --data-dir: that side of twemoji_tweets, its rows with one of the emojis "
        "(val: refused for a model trained on every tweet, train sqam --rows all)",
    )
    et.add_argument(
        "--no-offsets", dest="no_offsets", action="store_true",
        help="zero the per-emoji offsets tuned on TweetEval train (an ablation: the bot keeps them)",
    )  # fmt: skip
    et.add_argument("--baseline", choices=["svm"], help="score with the TF-IDF + LinearSVC trained on TweetEval train")
    et.add_argument("--json", action="store_true")
    et.set_defaults(func=cmd_evaluate_tweeteval)
    ea = evsub.add_parser(
        "airline",
        help="rank 🎉 😈 😡 for each airline tweet",
        description="Sentiment accuracy and macro-F1 (🎉 positive, 😈 neutral, 😡 negative) on an airline CSV, or on "
        "the airline tweets every model was trained without (--data-dir D alone).",
    )
    ea.add_argument("--csv", help="CSV with airline_sentiment and text columns")
    ea.add_argument(
        "--data-dir", dest="data_dir",
        help="the data folder: without --csv, score its airline tweets held out of training; for --baseline",
    )  # fmt: skip
    ea.add_argument(
        "--baseline", choices=["svm"],
        help="score with the TF-IDF + LinearSVC trained on the airline tweets outside the hold-out",
    )  # fmt: skip
    ea.add_argument("--json", action="store_true")
    ea.set_defaults(func=cmd_evaluate_airline)
    ee = evsub.add_parser(
        "emojis",
        help="rank the whole catalog for each text: top-1/top-5, MRR, macro-recall@5, distinct top-1",
        description="F has the columns text,emojis; emojis is a space-separated list of the emojis a person "
        "used with the text, in any form (with or without U+FE0F, skin-toned, :short_name:). Rows with no "
        "emoji of the catalog are counted in rows_skipped. With --emojis-in-text any CSV with a text column "
        "will do (a chat export, tweets of another collection): each text's own emojis are its gold. "
        "auto_react: what the bot's auto-react would add to these messages (--react-count, --react-threshold) "
        "and how many of those reactions are an emoji the writer used.",
    )
    ee.add_argument(
        "--csv",
        help="CSV with a text,emojis header; emojis: the emojis a person used with the text, space-separated, "
        "in any form (with or without U+FE0F, skin-toned, :short_name:, several run together)",
    )
    ee.add_argument(
        "--emojis-in-text",
        dest="emojis_in_text",
        action="store_true",
        help="F needs only a text column: the gold emojis of a row are the ones in its text (Unicode or "
        ":short_name:), taken out of the text before ranking; rows with none, or nothing else, are skipped",
    )
    ee.add_argument("--data-dir", dest="data_dir", help="the training data (for --split and --baseline)")
    ee.add_argument(
        "--split",
        choices=["train", "val", "tune"],
        help="score one side of twemoji_tweets/tweets.csv, split once with a fixed seed (80/20); "
        "val is refused for a model trained on every tweet (train sqam --rows all): in-sample. "
        "tune: the model's own tune rows (never trained on; they chose its epoch and weights, and the retrain "
        "gate reads them for a model trained on every tweet)",
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
    ee.add_argument(
        "--react-count",
        dest="react_count",
        type=positive,
        default=AUTO_REACT_COUNT,
        help=f"auto_react: at most this many reactions per message, as a channel's count (default {AUTO_REACT_COUNT})",
    )
    ee.add_argument(
        "--react-threshold",
        dest="react_threshold",
        type=fit_value,
        default=AUTO_REACT_THRESHOLD,
        help="auto_react: the fit an emoji needs, as a channel's threshold "
        f"(-1 to 1, default {AUTO_REACT_THRESHOLD:g})",
    )
    ee.add_argument(
        "--never",
        default="",
        metavar="EMOJIS",
        help='a channel\'s never-list ("😘 💋" or ":kissing_heart: :kiss:"): those emojis are taken out of every '
        "ranking and of auto_react, as the bot takes them out of what it posts in that channel",
    )
    ee.add_argument(
        "--read-at",
        dest="read_at",
        nargs=4,
        type=share,
        metavar=("POP_TOP5", "POP_MRR", "SVM_TOP5", "SVM_MRR"),
        help="also print reading: what the model would score on a collection where the yardsticks (the five "
        "most used emojis, and the TF-IDF + LinearSVC) score these top-5s and MRRs (the issue's held-out YouTube "
        "comments: 0.453 0.230 0.394 0.301), read as these rows reweighted as little as can be so that the "
        "yardsticks score that there: top-1, top-5 with its standard error, and MRR at those weights. An "
        "assumption, not a measurement; needs --data-dir (the yardsticks train on the train side)",
    )
    for part, what in ABLATIONS.items():  # each leaves one part of the ranking out; the bot never does
        ee.add_argument(f"--no-{part.replace('_', '-')}", dest=f"no_{part}", action="store_true", help=what)
    ee.add_argument("--json", action="store_true")
    ee.set_defaults(func=cmd_evaluate_emojis)

    ep = evsub.add_parser(
        "pictures",
        help="top-1/top-5, distinct modes of the picture model on labelled photos, "
        "among their emojis and over the whole catalog",
    )
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
