"""`emojify`, `picture` and `generate`: what the models answer, from the command line."""

from __future__ import annotations

import argparse
import os
import sys

from bot.cli.common import (
    CLIError,
    abc_triple,
    positive,
    print_json,
    quiet_tensorflow,
    read_stdin_text,
)


def cmd_emojify(args: argparse.Namespace) -> int:
    from models.catalog import UnknownEmojiError
    from models.ranker import EmptyTextError, TextRanker

    text = read_stdin_text() if args.text == "-" else args.text
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # undecodable bytes in the argument
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "replace")
        text = raw.decode("utf-8", "replace")
        print("emojibot: note: the text was not valid UTF-8; undecodable bytes were replaced", file=sys.stderr)
    ranker = TextRanker(args.artifacts)
    if args.explain:
        if args.candidates:
            raise CLIError("--explain reads the whole catalog's ranking: leave out --candidates")
        try:
            explanation = ranker.explain(text, args.top)
        except EmptyTextError as exc:
            raise CLIError(f'{exc} (for example: emojibot emojify "what a game!" --explain)') from exc
        _print_explanation(explanation, ranker.version, args.json)
        return 0
    try:
        result = ranker.rank([text], k=args.top, candidates=args.candidates)[0]
    except EmptyTextError as exc:
        raise CLIError(f'{exc} (for example: emojibot emojify "what a game!")') from exc
    except UnknownEmojiError as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json(
            {
                "text": text[:200],
                "model_version": ranker.version,
                "emojis": [
                    {"emoji": r.emoji, "score": float(f"{r.score:.4g}"), "fit": round(r.fit, 4)} for r in result
                ],
            }
        )
    else:
        print(" ".join(r.emoji for r in result))
        if args.scores:
            for r in result:
                # over the whole catalog the score is a probability (models.prior), among
                # candidates the SQAM's and the heads' sum: four significant digits for both
                print(f"  {r.emoji}  score {r.score:.4g}  fit {r.fit:+.3f}")
    return 0


_PART_NAMES = {"sqam": "SQAM", "names": "names", "meanings": "meaning", "catalog_head": "head", "sentence": "sentence"}


def _print_explanation(e, version: str, as_json: bool) -> None:
    """`emojify --explain`: each emoji's probability split into what the message gives it
    and what popularity does, its fit, and the terms whose sum the message's half reads."""
    from dataclasses import asdict

    if as_json:
        print_json(
            {"text": e.text[:200], "model_version": version, **{k: v for k, v in asdict(e).items() if k != "text"}}
        )
        return
    ranked = [x for x in e.emojis if x.held_back is None]
    print(" ".join(x.emoji for x in ranked))
    guards = []
    if e.grave:
        guards.append(
            "names a death, a grave illness, a disaster or the loss of a job, or sends sympathy: the grave "
            "guard holds back the laughing and partying emojis"
        )
    if e.complaint:
        guards.append("reads as a complaint: the complaint guard holds back the emojis of delight it does not name")
    opposite = [x.emoji for x in e.emojis if x.held_back == "opposite"]
    if opposite:
        guards.append(f"names an emoji whole: the opposite guard holds back {' '.join(opposite)}")
    # each reading with the line it is read against, to three places where it is that near
    # ("the power went out": 0.849 against 0.85 printed as "0.85" looked like a guard that failed)
    read = f"tone {e.tone:+.2f} (a complaint at ≤ {e.tone_threshold:+.2f})"
    if e.complaint_model is not None and e.complaint_cutoff is not None:
        places = 3 if abs(e.complaint_model - e.complaint_cutoff) < 0.01 else 2
        cutoff = "never" if e.complaint_cutoff > 1 else f"at ≥ {e.complaint_cutoff:.2f}"
        read += f", complaint model {e.complaint_model:.{places}f} (a complaint {cutoff})"
    print(read + "".join(f"; {g}" for g in guards))
    print(
        "prob = message + popular: each emoji's probability, from the message (the softmax of the sum of the terms "
        "on the right) and from how often people use it; fit: the cosine auto-react reads"
    )
    names = "".join(f"{_PART_NAMES[p]:>9}" for p in e.emojis[0].parts)
    print(f"\t{'prob':>7}{'message':>9}{'popular':>9}{'fit':>7}  |{names}")
    for x in e.emojis:
        terms = "".join(f"{v:>+9.2f}" for v in x.parts.values())
        if x.held_back:
            print(f"  {x.emoji}\t{'held back (' + x.held_back + ')':<25}{x.fit:>+7.2f}  |{terms}")
        else:
            note = "  (the name slot's place)" if x.by_name_slot else ""
            probs = f"{x.score:>7.4f}{x.from_message:>9.4f}{x.from_popularity:>9.4f}"
            print(f"  {x.emoji}\t{probs}{x.fit:>+7.2f}  |{terms}{note}")


def cmd_picture(args: argparse.Namespace) -> int:
    quiet_tensorflow()
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
        print_json(
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


DEFAULT_GRIDS = [("😀", "🐱", "❤️"), ("☀️", "🌧️", "🎄")]  # the sheet in docs/vae_samples.png


def cmd_generate(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    import numpy as np

    from models.catalog import EmojiCatalog
    from models.drawing import EmojiDecoder, sheet, to_image

    if not args.grid and args.code is None:
        args.grid = DEFAULT_GRIDS
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


def register(sub) -> None:
    e = sub.add_parser("emojify", help="top emojis for a text", description="Rank the catalog's emojis for TEXT.")
    e.add_argument("text", metavar="TEXT", help="the message; '-' reads it from standard input")
    e.add_argument("--top", type=positive, default=5, help="how many emojis (default 5)")
    e.add_argument("--candidates", nargs="+", metavar="EMOJI", help="rank only these emojis (Unicode or short names)")
    e.add_argument(
        "--scores",
        action="store_true",
        help="also print each emoji's score (over the whole catalog: its probability) and fit (the cosine, "
        "before popularity)",
    )
    e.add_argument(
        "--explain",
        action="store_true",
        help="say why each emoji stands where it does: its probability split into what the message gives it "
        "and what popularity does, its fit, the parts of the ranking that add up to the message's score "
        "(SQAM, names, meaning match, catalog head, sentence term), and the emojis a guard held back",
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
    pc.add_argument("--top", type=positive, default=5, help="how many emojis (5)")
    pc.add_argument("--candidates", nargs="+", metavar="EMOJI", help="rank only these emojis (Unicode or short names)")
    pc.add_argument("--out", help="write the novel emoji as a PNG here")
    pc.add_argument("--scale", type=positive, default=4, help="upscaling of the 36×36 novel emoji (4)")
    pc.add_argument("--samples", type=positive, default=50, help="generator samples per picture (50)")
    pc.add_argument("--seed", type=int, default=0)
    pc.add_argument("--max-mb", dest="max_mb", type=float, default=10.0, help="refuse files larger than this (10)")
    pc.add_argument("--scores", action="store_true", help="also print each emoji's probability")
    pc.add_argument("--json", action="store_true", help="print one JSON object")
    pc.set_defaults(func=cmd_picture)

    g = sub.add_parser("generate", help="draw novel emojis with the VAE decoder")
    g.add_argument("--out", required=True, help="PNG file to write")
    g.add_argument("--code", help="decode this 16-d code (comma-separated) instead of a sheet")
    g.add_argument("--random", type=positive, default=12, help="random novel emojis in the first row")
    g.add_argument(
        "--grid",
        type=abc_triple,
        action="append",
        metavar="A,B,C",
        help="a 2-D grid A + u(B−A) + v(C−A); repeatable (default: two grids)",
    )
    g.add_argument("--grid-size", type=positive, default=6)
    g.add_argument("--scale", type=positive, default=2, help="upscaling of the 36×36 pictures")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)
