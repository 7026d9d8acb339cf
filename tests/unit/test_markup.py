"""Platform markup as the text a person reads: what the adapters hand the core."""

import pytest

from bot.adapters.discord.adapter import plain_text as discord_plain
from bot.adapters.slack.markup import plain_text as slack_plain


@pytest.mark.parametrize(
    "raw, plain",
    [
        ("thanks <@U024BE7LH> :pray:", "thanks @U024BE7LH 🙏"),
        ("thanks <@U024BE7LH|bob>", "thanks @bob"),
        ("see <https://github.com/acme/api/pull/42|this PR> &amp; <https://x.org>", "see this PR & https://x.org"),
        ("<!here> lunch? :pizza::pizza:", "@here lunch? 🍕🍕"),
        ("<#C123|general> <#C9> <!subteam^S1|@oncall>", "#general #channel @oncall"),
        ("due <!date^1392734382^{date}|Feb 18, 2014>", "due Feb 18, 2014"),
        ("Q&amp;A &lt;3 and a &gt; b", "Q&A <3 and a > b"),
        ("typed &amp;lt; literally", "typed &lt; literally"),
        (":thumbsup::skin-tone-3: ok", "👍 ok"),
        (":partyparrot: at 10:30 :)", ":partyparrot: at 10:30 :)"),  # a custom emoji, a time, an emoticon
        ("🎉 already unicode :tada:", "🎉 already unicode 🎉"),
        ("plain text", "plain text"),
    ],
)
def test_slack_markup_reads_as_typed(raw, plain, catalog):
    assert slack_plain(raw, catalog) == plain


def test_slack_codes_stay_without_a_catalog():
    assert slack_plain("<@U1> :tada: &amp;") == "@U1 :tada: &"


@pytest.mark.parametrize(
    "raw, plain",
    [
        ("hey <@123> and <@!456>, <@&789> see <#111>", "hey @user and @user, @role see #channel"),
        ("lol <:partyparrot:123456> <a:dance:99>", "lol partyparrot dance"),
        ("standup <t:1618953630:R>, done <t:1618953630>", "standup , done "),
        ("use </emojify:123> now", "use /emojify now"),
        ("a < b > c <3 you", "a < b > c <3 you"),
    ],
)
def test_discord_markup_reads_as_typed(raw, plain):
    assert discord_plain(raw) == plain
