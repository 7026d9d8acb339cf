"""`train vae|sqam|heads|names|sentence|catalog-head|complaint|wgan`: build the shipped artifacts from the data."""

from __future__ import annotations

import argparse

from bot.cli.common import (
    CLIError,
    non_negative,
    positive,
    positive_number,
    print_json,
    quiet_tensorflow,
    require_data_dir,
    unit_interval,
)

WRITE_HELP = "artifact folder to write (default: --artifacts, else the shipped one)"
READ_WRITE_HELP = "artifact folder to read the SQAM from and write to (default: --artifacts, else the shipped one)"


def out_folder(args: argparse.Namespace) -> str | None:
    """The artifact folder a train command reads and writes: ``--out``, or else the global
    ``--artifacts`` (then $EMOJIBOT_ARTIFACTS, then the shipped folder). Without this,
    `emojibot --artifacts DIR train …` trained into the shipped folder and overwrote it.
    Its files shared with a registry's versions are made its own first (:func:`own_files`)."""
    from pathlib import Path

    from models.artifacts import artifacts_dir, own_files

    out, chosen = args.out, args.artifacts
    if out and chosen and Path(out).resolve() != Path(chosen).resolve():
        raise CLIError(f"--out {out} and --artifacts {chosen} name different folders: give one of them")
    # the folder's files hard-linked into a registry's versions get copies of their own
    # first: a train command writes some files in place
    own_files(artifacts_dir(out or chosen))
    return out or chosen


def cmd_train_vae(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    quiet_tensorflow()
    from training.vae import train_vae

    info = train_vae(args.out, epochs=args.epochs, seed=args.seed)
    print_json(info)
    return 0


def cmd_train_sqam(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    quiet_tensorflow()
    from training.sqam import TrainSettings, train_sqam

    require_data_dir(args.data_dir)
    s = TrainSettings(seed=args.seed, rows=args.rows)
    if args.train_share is not None and args.train_share <= 0:
        raise CLIError("--train-share must be above 0")
    if args.epochs is not None:
        if args.epochs < 1:
            raise CLIError("--epochs must be at least 1")
        s.epochs = args.epochs
    for name in (
        "learning_rate", "weight_decay", "ema", "ngram_dropout", "tweeteval_weight", "description_weight", "top_words",
        "train_share",
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
    info = train_sqam(args.data_dir, args.out, s, codes_dir=args.codes)  # no MiniLM: one line (bot.cli.main)
    print_json({k: v for k, v in info.items() if k != "history"})
    return 0


def cmd_train_heads(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    from training.heads import HeadSettings, train_heads

    require_data_dir(args.data_dir)
    s = HeadSettings(calibrate=not args.no_offsets, lexicon=not args.no_lexicon)
    if args.no_sequence:
        s.airline_sequence = None
    if args.max_tweets is not None:
        if args.max_tweets < 1:
            raise CLIError("--max-tweets must be at least 1")
        s.max_tweets = args.max_tweets
    info = train_heads(args.data_dir, args.out, s)  # too few tweets: DataError, one line
    print_json(info)
    return 0


def cmd_train_names(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    from training.names import train_names

    require_data_dir(args.data_dir)
    info = train_names(args.data_dir, args.out)
    print_json({k: v for k, v in info.items() if k != "tune_grid"})
    return 0


def cmd_train_sentence(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    quiet_tensorflow()
    from training.sentence import SentenceSettings, train_sentence

    require_data_dir(args.data_dir)
    s = SentenceSettings(cache=not args.no_cache)
    for name in ("max_texts", "epochs", "max_tweets", "tweeteval_labels"):  # each checked by its argparse type
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    info = train_sentence(args.data_dir, args.out, s)
    print_json({k: v for k, v in info.items() if k != "student"} | {"student": {
        k: v for k, v in info["student"].items() if k != "history"}})  # fmt: skip
    return 0


def cmd_train_catalog_head(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    from training.catalog_head import CatalogHeadSettings, train_catalog_head

    require_data_dir(args.data_dir)
    s = CatalogHeadSettings()
    for name in ("c", "balance", "keep", "max_tweets", "tweeteval_weight"):  # each checked by its argparse type
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    info = train_catalog_head(args.data_dir, args.out, s)
    print_json({k: v for k, v in info.items() if k != "tune_grid"})
    return 0


def cmd_train_complaint(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    from training.complaint import ComplaintSettings, train_complaint

    require_data_dir(args.data_dir)
    s = ComplaintSettings()
    if args.max_texts is not None:
        s.max_texts = args.max_texts
    info = train_complaint(args.data_dir, args.out, s)
    print_json({k: v for k, v in info.items() if k not in ("grid", "lexicon_grid")})
    return 0


def cmd_train_wgan(args: argparse.Namespace) -> int:
    args.out = out_folder(args)
    quiet_tensorflow()
    from training.wgan import WGANSettings, train_wgan

    require_data_dir(args.data_dir)
    s = WGANSettings(seed=args.seed, sheet_dir=args.sheets)
    for name in (
        "classifier_minutes",
        "classifier_epochs",
        "wgan_epochs",
        "wgan_minutes",
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
    print_json({k: v for k, v in info.items() if k != "variant_histories"})
    return 0


def register(sub) -> None:
    t = sub.add_parser("train", help="train a model and write it to the artifact folder")
    tsub = t.add_subparsers(dest="model", metavar="MODEL", required=True)
    tv = tsub.add_parser("vae", help="the convolutional VAE over emoji pictures (needs no data dir)")
    tv.add_argument("--epochs", type=int, default=300, help="most epochs; stops early on held-out loss")
    tv.add_argument("--seed", type=int, default=7)
    tv.add_argument("--out", help=WRITE_HELP)
    tv.set_defaults(func=cmd_train_vae)
    ts = tsub.add_parser("sqam", help="the Siamese text→emoji model (needs the VAE codes)")
    ts.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    ts.add_argument("--epochs", type=int, help="epochs (default 3; the best on the tune rows is kept)")
    ts.add_argument("--seed", type=int, default=13)
    ts.add_argument(
        "--rows",
        choices=("train", "all"),  # training.data.TWEMOJI_ROWS (not imported: the CLI starts light)
        default="all",
        help="whole-catalog tweets to train on: train = the train side, its figures measured on the val side "
        "(evaluate emojis --split val); all = every tweet, the val side too (default: what ships)",
    )
    ts.add_argument(
        "--train-share",
        dest="train_share",
        type=unit_interval,
        help="train on a seeded share of the tweets outside the tune rows (1; what more tweets are worth)",
    )
    ts.add_argument("--max-tweets", type=int, help="train on at most this many tweets (quick runs)")
    ts.add_argument("--codes", help="folder with the VAE codes (default: --out)")
    hp = ts.add_argument_group("hyper-parameters (defaults: the shipped model's)")
    hp.add_argument("--learning-rate", dest="learning_rate", type=float, help="peak AdamW rate (2e-3)")
    hp.add_argument("--weight-decay", dest="weight_decay", type=float, help="AdamW decoupled weight decay (0.02)")
    hp.add_argument("--ema", type=float, help="moving average of the weights kept (0.99; 0 = the raw weights)")
    hp.add_argument("--loss", choices=["softmax", "hinge"], help="softmax over the catalog, or the triplet hinge")
    hp.add_argument("--scale", type=float, help="cosine → logit scale (8)")
    hp.add_argument(
        "--tweeteval-weight",
        dest="tweeteval_weight",
        type=float,
        help="weight of TweetEval's train tweets (but the 8,000 `train catalog-head` chooses on), each a choice among "
        "TweetEval's 20 emojis (default 0: left out)",
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
    ts.add_argument("--out", help=WRITE_HELP)
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
    th.add_argument("--out", help=READ_WRITE_HELP)
    th.set_defaults(func=cmd_train_heads)
    tn = tsub.add_parser(
        "names",
        help="the emoji-name and meaning matches of whole-catalog ranking (after `train sqam`; about 4 minutes "
        "for a new vocabulary, seconds on a rerun)",
        description="Match the words of each emoji's names in messages, and the words near them in meaning (each "
        "vocabulary word and emoji name embedded by all-MiniLM-L6-v2; kept in the file, so a rerun for the same "
        "vocabulary reuses them), and choose both weights on the SQAM's tune rows (never on the validation side).",
    )
    tn.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    tn.add_argument("--out", help=READ_WRITE_HELP)
    tn.set_defaults(func=cmd_train_names)
    tt = tsub.add_parser(
        "sentence",
        help="the sentence term of whole-catalog ranking: the MiniLM sentence encoder distilled into a small "
        "network (after `train sqam`, before `train catalog-head`; about 8 minutes, seconds of it on a rerun)",
        description="Embed the SQAM's training tweets and TweetEval train tweets (40,000 texts at most) with "
        "all-MiniLM-L6-v2, fit a logistic regression over the tweets' sentence vectors (the teacher), and train a "
        "small network over the SQAM's own inputs to give the teacher's probabilities (the student, what ships). "
        "The sentence vectors are kept in a cache ($EMOJIBOT_CACHE_DIR, else ~/.cache/emojibot) for the next run. "
        "`train catalog-head` then chooses the term's weight with the popularity mix.",
    )
    tt.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    tt.add_argument("--max-texts", dest="max_texts", type=positive, help="texts the encoder embeds at most (40000)")
    tt.add_argument("--epochs", type=positive, help="the student's epochs at most (10)")
    tt.add_argument(
        "--tweeteval-labels",
        dest="tweeteval_labels",
        type=non_negative,
        help="the teacher also learns TweetEval train tweets' own emoji at this weight (0.3; 0: their texts only, "
        "unlabelled; the tweets `train catalog-head` chooses on are always left out)",
    )
    tt.add_argument("--max-tweets", dest="max_tweets", type=positive, help="train on at most this many tweets (tests)")
    tt.add_argument("--no-cache", dest="no_cache", action="store_true", help="neither read nor keep sentence vectors")
    tt.add_argument("--out", help=READ_WRITE_HELP)
    tt.set_defaults(func=cmd_train_sentence)
    tc = tsub.add_parser(
        "catalog-head",
        help="the linear n-gram model of whole-catalog ranking (after `train names`; about a minute)",
        description="Train a LinearSVC over the SQAM's n-grams on the whole-catalog train tweets, prune it, and "
        "choose its weight next to the SQAM and the names on the SQAM's tune rows; then fit the popularity mix "
        "(temperature, weight, and whether the weight yields to a sure answer) with the sentence term's weight, "
        "and the name slot's threshold, on the same rows and TweetEval's choosing train tweets (never on the "
        "validation side).",
    )
    tc.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    tc.add_argument("--c", type=positive_number, help="the LinearSVC's C (0.1)")
    tc.add_argument(
        "--balance",
        type=unit_interval,
        help="an emoji's tweets weigh (count / mean count)^-balance: 0 plain, 1 balanced (0.25)",
    )
    tc.add_argument("--keep", type=positive, help="weights kept, those with the largest |w| · idf (300000)")
    tc.add_argument(
        "--tweeteval-weight",
        dest="tweeteval_weight",
        type=non_negative,
        help="TweetEval's train tweets (but the 8,000 it chooses on) in the columns of its 20 emojis, each at this "
        "weight next to a whole-catalog tweet, after every weight is chosen (0.3; 0: none)",
    )
    tc.add_argument("--max-tweets", dest="max_tweets", type=positive, help="train on at most this many tweets (tests)")
    tc.add_argument("--out", help=READ_WRITE_HELP)
    tc.set_defaults(func=cmd_train_catalog_head)
    tm = tsub.add_parser(
        "complaint",
        help="the learned half of the complaint guard (after `train catalog-head`; about a minute)",
        description="Fit a logistic regression over the SQAM question tower's inputs on the airline tweets' "
        "sentiment (negative against the rest, the heads' training side), then choose its cutoff: of 0.95, 0.9, "
        "0.85 and 0.8, those that cost the tune rows and TweetEval's 8,000 choosing tweets at most 0.002 of top-5 "
        "and of MRR against the VADER lexicon alone, the one that reads the most messages as complaints. A "
        "message reads as a complaint where the lexicon's tone is at most -0.3 or the model's probability reaches "
        "the cutoff, and then gets no emoji of delight (😍 😊 💕 🎉 …) unless it names it. Also measures again "
        "what the lexicon alone costs against no guard at each threshold (manifest.json → complaint).",
    )
    tm.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    tm.add_argument("--max-texts", dest="max_texts", type=positive, help="at most this many texts of each (tests)")
    tm.add_argument("--out", help=READ_WRITE_HELP)
    tm.set_defaults(func=cmd_train_complaint)

    tw = tsub.add_parser(
        "wgan",
        help="the picture models: image encoder + baseline CNN, then the WGAN-GP (about 17 minutes, 20 at most)",
        description="Train the image encoder (as a CNN classifier, the baseline), then a "
        "conditional WGAN-GP over its features (about 17 minutes on a 2-core machine, 20 at "
        "most: each stage stops at its time budget). With several --spaces or --weighting it "
        "trains one variant for each and ships the best on the held-out photos.",
    )
    tw.add_argument("--data-dir", required=True, help="the training data folder (e.g. ../shared/data)")
    tw.add_argument("--classifier-minutes", dest="classifier_minutes", type=float, help="encoder budget, minutes (13)")
    tw.add_argument("--classifier-epochs", dest="classifier_epochs", type=int, help="encoder epochs at most (14)")
    tw.add_argument("--wgan-epochs", dest="wgan_epochs", type=int, help="epochs of each WGAN variant (25)")
    tw.add_argument("--wgan-minutes", dest="wgan_minutes", type=float, help="budget of each WGAN variant, minutes (5)")
    tw.add_argument("--n-critic", dest="n_critic", type=int, help="critic steps per generator step (5)")
    tw.add_argument("--gp-lambda", dest="gp_lambda", type=float, help="gradient penalty weight (10)")
    tw.add_argument("--smoothing-k", dest="smoothing_k", type=float, help="k of exp(−k·freq) weights (20)")
    tw.add_argument(
        "--weighting",
        nargs="+",
        choices=["expsmooth", "tfidf", "none"],
        help="per-example weightings to compare (none; the shipped variant's)",
    )
    tw.add_argument(
        "--spaces",
        nargs="+",
        choices=["sqam", "vae", "emoji2vec"],
        help="target embedding spaces to compare (sqam; the first is used for the weightings)",
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
    tw.add_argument("--out", help=WRITE_HELP)
    tw.set_defaults(func=cmd_train_wgan)
