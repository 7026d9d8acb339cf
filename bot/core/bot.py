"""``BotCore``: what the bot does with a platform-neutral event. No platform imports here.

- :meth:`BotCore.process` decides what an event asks for; :meth:`BotCore.handle` wraps it
  in the store's inbox for callers that answer at once (the playground, interactions):
  a platform retry of an event already handled (same event id) does nothing, even when
  another worker handled it. Platform events that are answered later go through
  :class:`bot.core.pipeline.EventPipeline`, which marks them done only after their actions.
- Texts are cleaned and cut to what the ranker reads before they are ranked or stored.
- Messages in channels with auto-react on get the top emojis above the channel's score
  threshold; pictures get their generated emoji distribution and a threaded reply with
  a novel emoji. Bots (itself included) are never answered.
- ``/emojify TEXT`` answers the caller alone with the top 5, best fit first, and their fits; the text is
  stored only in channels with auto-react on.
- ``/emojify-admin on|off|threshold X|count N|learning on|off|never [= ]E…|allow E…|all|status``
  changes a channel; only admins (configuration) may, and every attempt is audit-logged.
- A channel's never-list keeps emojis out of what the bot posts there (a workplace may
  want no 😘): its reactions and ``/emojify`` answers take the ranking's next emojis, a
  picture's reactions the next of its sampled emojis (none left: the bot says so and
  adds nothing), and the emoji it draws is made of what is left.
- Human reactions on messages the bot answered are logged with a salted user hash, and
  admin commands are audit-logged with one too (never the raw id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import itemgetter

from bot.core.engine import Ranking
from bot.core.events import (
    Action,
    AddReactions,
    CommandInvoked,
    EmojiChoice,
    Event,
    MessageCreated,
    ReactionChanged,
    Reply,
)
from bot.core.metrics import BotMetrics
from bot.core.pipeline import EventPipeline
from bot.store.repository import Store, clean_text
from models.reactions import MAX_NEVER, NotEmojis, never_list, reactions, without

log = logging.getLogger("emojibot.core")
EXPORT_REPLY_CHARS = 3_000  # a chat reply stays readable; the counts above it are always whole

EMOJIFY_HELP = (
    "*/emojify TEXT* — the 5 emojis that fit TEXT best, with how well each fits (only you see the answer).\n"
    "Example: `/emojify just landed in Barcelona, the beach is unreal`\n"
    "*/emojify forget-me* — delete everything the bot stored about you (your messages and reactions)."
)
FORGET_WORDS = ("forget-me", "forget me")
POPULAR_SHARE = 0.5  # /emojify names an emoji as there for its popularity past this share of its probability
AUDIT_DETAIL_CHARS = 2_000  # what an admin typed after the action, as the audit keeps it (a never-list's names)
BUSY_TEXT = "I can't take that right now (I'm restarting, or my database is unavailable). Try again in a minute."
ADMIN_HELP = (
    "*/emojify-admin* — channel settings (admins only):\n"
    "• `on` / `off` — react to every message in this channel\n"
    "• `threshold X` — react only with emojis that fit the message at least X (-1 to 1)\n"
    "• `count N` — react with at most N emojis (1 to 10)\n"
    "• `learning on` / `off` — keep this channel's messages (for the retention period) to learn from "
    "the reactions people add; off: no message text is stored\n"
    "• `never 😘 💋` — never use these emojis in this channel (its reactions, picture reactions and /emojify "
    "answers take the next ones; emojis or `:names:`) · `never` — the list · `never = 😘 💋` — set the whole "
    "list · `allow 😘` — use it again · `allow all` — empty the list\n"
    "• `status` — this channel's settings, the model version and counts\n"
    "• `export USER_ID` — what the bot stores about a user (their messages, reactions, admin commands)\n"
    "• `retrain` — learn from the reactions people added (runs in the background; the new model is used "
    "only if it passes the quality gate) · `retrain status` — its progress and result"
)


@dataclass(frozen=True)
class AdminPolicy:
    user_ids: frozenset[str] = frozenset()
    role_ids: frozenset[str] = frozenset()
    manage_server_is_admin: bool = True

    def allows(self, cmd: CommandInvoked) -> bool:
        return (
            cmd.caller_is_admin
            or cmd.user_id in self.user_ids
            or any(r in self.role_ids for r in cmd.user_role_ids)
            or (self.manage_server_is_admin and cmd.user_can_manage_server)
        )


class BotCore:
    def __init__(
        self,
        store: Store,
        text_engine,
        picture_engine=None,
        catalog=None,
        admins: AdminPolicy | None = None,
        bot_user_ids: Sequence[str] = (),
        retention_days: float = 30.0,
        models=None,
    ):
        from bot.core.models import ModelManager
        from models.catalog import EmojiCatalog

        self.store = store
        self.text = text_engine
        self.pictures = picture_engine
        self.catalog = catalog or EmojiCatalog.load()
        self.admins = admins or AdminPolicy()
        self.bot_user_ids = set(bot_user_ids)
        self.retention_days = retention_days
        self.metrics = BotMetrics()
        self.models = models or ModelManager(store, text_engine)
        self.pipeline = EventPipeline(self)
        self.metrics.watch_engine("text", text_engine)
        self.metrics.watch_engine("picture", picture_engine)

    @property
    def model_version(self) -> str:
        return self.text.version

    async def housekeeping(self) -> dict[str, int]:
        """The retention period: stored messages and reactions older than ``retention_days``
        are deleted (the pipeline runs this hourly), and finished dedupe records after a day."""
        gone = await self.store.purge_older_than(self.retention_days)
        gone["event_records"] = await self.store.forget_events_older_than(1.0)
        return gone

    async def _rank(self, text: str, k: int, cfg) -> tuple[Ranking, list[str]]:
        """The first ``k`` of the text's ranking without the channel's never-list (ranked
        for ``k`` more than the list holds), with the version of the model that ranked it,
        and the emojis of the list the first ``k`` held (what the list changed)."""
        ranking = await self.text.rank_async(text, k=k + len(cfg.never))
        kept_out = [r.emoji for r in ranking[:k] if r.emoji in cfg.never]
        return Ranking(without(ranking, cfg.never, k), _version_of(ranking, self.model_version)), kept_out

    def _choice(self, char: str, score: float) -> EmojiChoice:
        return EmojiChoice(char, self.catalog.lookup(char).short_name, float(score))

    async def handle(self, event: Event) -> list[Action]:
        """Claim, process and complete an event whose caller acts on the answer at once.

        A retry of a known event gets ``[]``. When processing fails the event is marked
        failed (its caller has the error to show) and the error propagates;
        :class:`bot.store.StoreUnavailable` means nothing was recorded."""
        if not await self.store.claim_event(event.platform, event.event_id):
            log.info("event %s/%s already handled: dropped", event.platform, event.event_id)
            self.metrics.event(event.platform, "duplicate")
            return []
        self.metrics.event(event.platform, "received")
        try:
            actions = await self.process(event)
        except BaseException:
            self.metrics.event(event.platform, "failed")
            try:
                await self.store.complete_event(event.platform, event.event_id, failed=True)
            except Exception:  # the store is down: the claim stays pending, nothing to replay
                pass
            raise
        await self.store.complete_event(event.platform, event.event_id)
        self.metrics.event(event.platform, "handled")
        return actions

    async def process(self, event: Event) -> list[Action]:
        """What the bot does with an event (no claim: the caller owns its lifecycle)."""
        if isinstance(event, MessageCreated):
            return await self._message(event)
        if isinstance(event, ReactionChanged):
            return await self._reaction(event)
        if isinstance(event, CommandInvoked):
            return await self._command(event)
        raise TypeError(f"unknown event {type(event).__name__}")

    # -- messages ----------------------------------------------------------------------------
    async def _message(self, m: MessageCreated) -> list[Action]:
        if m.author_is_bot or m.author_id in self.bot_user_ids:
            return []
        cfg = await self.store.channel(m.platform, m.channel_id)
        if not cfg.auto_react:
            if cfg.learning and _readable(m.text).strip():  # kept to learn from the reactions it gets
                await self._log(m, "text", _readable(m.text), self.model_version, (), cfg)
            return []
        pictures = [a for a in m.attachments if a.content_type.startswith("image/") and a.data]
        if pictures:
            return await self._picture_message(m, pictures[0].data, cfg)
        return await self._react_to_text(m, cfg)

    async def _react_to_text(self, m: MessageCreated, cfg) -> list[Action]:
        """The channel's top emojis for the message's text, logged; [] when none clears the
        threshold or there is no text."""
        text = _readable(m.text)
        if not text.strip():
            return []
        ranked, _ = await self._rank(text, cfg.count, cfg)
        # The threshold reads how well each emoji fits the message (the cosine), not its rank
        # score: an emoji high in the ranking only because people use it everywhere (😂 ❤️)
        # does not fit a lost game and is not added to it.
        chosen = tuple(self._choice(r.emoji, r.fit) for r in reactions(ranked, cfg.threshold))
        if chosen or cfg.learning:
            await self._log(m, "text", text, _version_of(ranked, self.model_version), chosen, cfg)
        return [AddReactions(m.channel_id, m.message_id, chosen)] if chosen else []

    async def _log(self, m: MessageCreated, kind: str, text: str, version: str, chosen, cfg) -> None:
        """What the bot answered to a message; the text only where the channel learns (where
        it does not, no message text is stored at all)."""
        await self.store.log_prediction(
            m.platform,
            m.channel_id,
            m.message_id,
            kind,
            text if cfg.learning else "",
            version,
            [c.char for c in chosen],
            [c.score for c in chosen],
            author_id=m.author_id,
        )

    async def _picture_message(self, m: MessageCreated, data: bytes, cfg) -> list[Action]:
        if self.pictures is None:  # no picture model: the message's text decides, and we say so
            actions = await self._react_to_text(m, cfg)
            actions.append(
                Reply(
                    m.channel_id,
                    "I can't look at pictures yet (no picture model is installed); I went by the message's text.",
                    thread_of=m.message_id,
                )
            )
            return actions
        from models.picture import PictureError

        try:
            answer = await self.pictures.answer_async(data, k=cfg.count + len(cfg.never))
        except PictureError as exc:
            return [Reply(m.channel_id, f"I couldn't read that picture: {exc}.", thread_of=m.message_id)]
        if cfg.never:
            # the next of the emojis its samples picked in place of those kept out (asked for
            # as many more as the list holds), and the drawing made of what is left
            top = without(answer.top, cfg.never, cfg.count, emoji=itemgetter(0))
            if not top:
                return [
                    Reply(
                        m.channel_id,
                        "What I see in that picture is all on this channel's never-list, so I leave it be.",
                        thread_of=m.message_id,
                    )
                ]
            answer = replace(answer, top=top)
        chosen = tuple(self._choice(e, p) for e, p in answer.top)
        await self._log(m, "picture", _readable(m.text), self.pictures.version, chosen, cfg)
        png = await self.pictures.novel_png(answer)
        listing = "  ".join(f"{c.char} {c.score:.0%}" for c in chosen)
        return [
            AddReactions(m.channel_id, m.message_id, chosen),
            Reply(
                m.channel_id,
                f"What I see: {listing}. Here is an emoji I drew for it:",
                thread_of=m.message_id,
                image_png=png,
                image_name="novel-emoji.png",
                emojis=chosen,
            ),
        ]

    # -- reactions ---------------------------------------------------------------------------
    async def _reaction(self, r: ReactionChanged) -> list[Action]:
        if r.user_is_bot or r.user_id in self.bot_user_ids:
            return []
        if await self.store.predicted(r.platform, r.channel_id, r.message_id):
            emoji = self.catalog.lookup(r.emoji).char if r.emoji in self.catalog else r.emoji
            await self.store.log_reaction(
                r.platform, r.channel_id, r.message_id, emoji, r.added, r.user_id, event_id=r.event_id
            )
        return []

    # -- commands ----------------------------------------------------------------------------
    async def _command(self, c: CommandInvoked) -> list[Action]:
        if c.command == "emojify":
            return await self._emojify(c)
        if c.command == "emojify-admin":
            return await self._admin(c)
        return [Reply(c.channel_id, f"unknown command /{c.command}", ephemeral=True)]

    async def _emojify(self, c: CommandInvoked) -> list[Action]:
        text = _readable(c.text).strip()
        if not text or text in ("help", "-h", "--help"):
            return [Reply(c.channel_id, EMOJIFY_HELP, ephemeral=True)]
        if text.lower() in FORGET_WORDS:
            gone = await self.store.forget_user(c.platform, c.user_id)
            return [
                Reply(
                    c.channel_id,
                    f"Done: I deleted {gone['messages']} of your messages and {gone['reactions']} of your "
                    f"reactions; {gone['audit_rows_anonymised']} admin-log rows of yours no longer say who you are.",
                    ephemeral=True,
                )
            ]
        cfg = await self.store.channel(c.platform, c.channel_id)
        ranked, kept_out = await self._rank(text, 5, cfg)
        # The ranking picks the five (it weighs in how often people use each emoji, which
        # wins top-5 on real messages); the reply shows them best fit first, so the emoji
        # that answers the message leads: "feeling really sad about the news today" ranks
        # 😂 😥 😭 😞 😢 and is shown 😞 😢 😥 😭 😂 (sorted is stable: ties keep the ranking).
        chosen = tuple(sorted((self._choice(r.emoji, r.fit) for r in ranked), key=lambda x: -x.score))
        if cfg.learning:  # the channel keeps texts to learn
            await self.store.log_prediction(
                c.platform,
                c.channel_id,
                c.event_id,
                "command",
                text,
                _version_of(ranked, self.model_version),
                [x.char for x in chosen],
                [x.score for x in chosen],
                author_id=c.user_id,
            )
        # the name as words, not a :short_name: that a chat client would draw as the emoji again
        lines = "\n".join(f"{x.char}  {x.short_name.replace('_', ' ')}  fit `{x.score:+.3f}`" for x in chosen)
        fitting = [x.char for x in chosen if x.score >= cfg.threshold]
        # the ones that do not fit and are here mostly for how often people use them (the
        # popularity mix's share of their probability, models.prior), by name
        share = {r.emoji: getattr(r, "popular", 0.0) for r in ranked}
        popular = [x.char for x in chosen if x.score < cfg.threshold and share.get(x.char, 0.0) >= POPULAR_SHARE]
        it, is_ = ("it", "is") if len(popular) == 1 else ("them", "are")
        why = f"{' '.join(popular)} {is_} here mostly because people use {it} most" if popular else ""
        if not fitting:
            # the ranking still has a top 5 (popularity fills it); say that none of it fits
            lines += (
                f"\n_None of these fits the message well (every fit is below {cfg.threshold:g}), so auto-react "
                f"adds none of them{'; ' + why if why else ''}._"
            )
        elif len(fitting) < len(chosen):
            # say which fit, and which of the rest are the ranking's popular guesses
            lines += (
                f"\n_Fits the message (at least {cfg.threshold:g}): {' '.join(fitting)}; the others are weaker "
                f"guesses{' (' + why + ')' if why else ''}._"
            )
        if kept_out:  # say why an emoji the ranking put here is missing
            lines += f"\n_Not shown: {' '.join(kept_out)}, kept out of this channel (`/emojify-admin never`)._"
        return [Reply(c.channel_id, f"{' '.join(x.char for x in chosen)}\n{lines}", ephemeral=True, emojis=chosen)]

    async def _admin(self, c: CommandInvoked) -> list[Action]:
        words = _readable(c.text).split()
        action = words[0].lower()[:32] if words else "help"
        allowed = self.admins.allows(c)
        # A refused attempt keeps its action only: what a stranger typed after it is not stored.
        detail = " ".join(words[1:])[:AUDIT_DETAIL_CHARS] if allowed else ""
        await self.store.audit(c.platform, c.channel_id, c.user_id, action, detail, allowed)
        if action in ("help", "-h", "--help"):
            return [Reply(c.channel_id, ADMIN_HELP, ephemeral=True)]
        if not allowed:
            return [
                Reply(
                    c.channel_id,
                    "Only admins can change the bot's settings (ask a workspace or server "
                    "admin; admins are set in the bot's configuration).",
                    ephemeral=True,
                )
            ]
        store, p, ch = self.store, c.platform, c.channel_id
        try:
            if action in ("on", "off"):
                cfg = await store.update_channel(p, ch, auto_react=action == "on")
            elif action == "learning" and len(words) == 2 and words[1] in ("on", "off"):
                cfg = await store.update_channel(p, ch, learning=words[1] == "on")
            elif action in ("never", "allow"):
                reply = await self._never(c, action, words[1:])
                if reply is not None:
                    return [Reply(ch, reply, ephemeral=True)]
                cfg = await store.channel(p, ch)
            elif action == "threshold" and len(words) == 2:
                value = float(words[1])
                if not -1.0 <= value <= 1.0:
                    raise ValueError
                cfg = await store.update_channel(p, ch, threshold=value)
            elif action == "count" and len(words) == 2:
                n = int(words[1])
                if not 1 <= n <= 10:
                    raise ValueError
                cfg = await store.update_channel(p, ch, count=n)
            elif action == "export" and len(words) == 2:
                data = await store.export_user(p, words[1].strip("<@>"))
                body = json.dumps(data, ensure_ascii=False)
                summary = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in data.items())
                if len(body) > EXPORT_REPLY_CHARS:
                    body = body[:EXPORT_REPLY_CHARS] + f" … (cut at {EXPORT_REPLY_CHARS:,} characters)"
                return [Reply(ch, f"Stored about `{words[1]}`: {summary}\n```{body}```", ephemeral=True)]
            elif action == "retrain" and len(words) == 2 and words[1] == "status":
                return [Reply(ch, await self.models.status_text(), ephemeral=True)]
            elif action == "retrain" and len(words) == 1:
                from bot.core.models import RetrainUnavailable

                try:
                    await self.models.start_retrain("admin")
                except RetrainUnavailable as exc:
                    return [Reply(ch, f"I can't retrain now: {exc}.", ephemeral=True)]
                return [
                    Reply(
                        ch,
                        f"Retraining started from model {self.model_version}: it learns from the reactions people "
                        "added and replaces the model only if it passes the quality gate. "
                        "`/emojify-admin retrain status` shows how it goes.",
                        ephemeral=True,
                    )
                ]
            elif action == "status":
                cfg = await store.channel(p, ch)
                counts = await store.counts()
                return [
                    Reply(
                        ch,
                        self._status(cfg)
                        + f"\nModel {self.model_version}; logged so far: "
                        + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
                        + "\n"
                        + await self.models.status_text(),
                        ephemeral=True,
                    )
                ]
            else:
                return [Reply(ch, f"I don't know `{c.text.strip()[:200]}`.\n{ADMIN_HELP}", ephemeral=True)]
        except ValueError:
            return [
                Reply(
                    ch,
                    f"`{c.text.strip()[:200]}`: threshold takes a number from -1 to 1, "
                    "count a whole number from 1 to 10.",
                    ephemeral=True,
                )
            ]
        return [Reply(ch, "Done. " + self._status(cfg), ephemeral=True)]

    async def _never(self, c: CommandInvoked, action: str, args: list[str]) -> str | None:
        """`never [= ]E…` / `allow E…|all`: change the channel's never-list (None: done, the
        caller says the settings), or the reply that says why nothing changed."""
        store, p, ch = self.store, c.platform, c.channel_id
        if action == "never" and not args:
            return _never_text(await store.channel(p, ch))
        if action == "allow" and not args:
            return "`allow 😘` uses an emoji in this channel again; `allow all` empties the never-list."
        if action == "never" and args == ["="]:
            return "`never = 😘 💋` sets this channel's whole never-list; `allow all` empties it."
        if action == "allow" and [a.lower() for a in args] == ["all"]:
            await store.update_channel(p, ch, never=())
            return None
        replace_all = action == "never" and args[0] == "="
        try:
            emojis = never_list(
                self.catalog, " ".join(args[1:] if replace_all else args), MAX_NEVER if action == "never" else None
            )
        except NotEmojis as exc:
            return f"{_sentence(exc)} Give emojis (😘) or their names (`:kissing_heart:`), separated by spaces."
        except ValueError as exc:  # too many
            return _sentence(exc)
        try:
            if replace_all:
                await store.update_channel(p, ch, never=emojis)
            elif action == "never":
                await store.change_never(p, ch, add=emojis, limit=MAX_NEVER)
            else:
                await store.change_never(p, ch, remove=emojis)
        except ValueError as exc:  # the list would be too long
            return _sentence(exc)
        return None

    @staticmethod
    def _status(cfg) -> str:
        state = "on" if cfg.auto_react else "off"
        learning = "kept to learn from" if cfg.learning else "not stored (learning is off)"
        return (
            f"Auto-react is {state} in this channel: up to {cfg.count} emojis "
            f"that fit the message at least {cfg.threshold:g}. Message texts are {learning}. " + _never_text(cfg)
        )


def _sentence(exc: Exception) -> str:
    """Why an admin command changed nothing, as a sentence."""
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}. Nothing changed."


def _never_text(cfg) -> str:
    if not cfg.never:
        return "No emoji is kept out of this channel."
    return f"Never used in this channel: {' '.join(cfg.never)}."


def _version_of(ranked, default: str) -> str:
    """The version of the model that produced a ranking (the engine says; a reload may have
    happened since), else the bot's current one."""
    return str(getattr(ranked, "version", default))


def _readable(text: str) -> str:
    """The part of a text the ranker reads, in a form every store accepts."""
    from models.text import MAX_CHARS

    return clean_text(text, MAX_CHARS)
