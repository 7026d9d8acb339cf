"""Loopback fakes of the platforms' servers, for the tests and `emojibot bench slack`.

They sit at the one edge we cannot reach from here (Slack's and Discord's servers) and
check what the real platforms check: bearer tokens, required arguments, known emoji
names, rate limits, the file upload flow.
"""
