"""The limits and field lists of the event rules, declared once.

:mod:`touchpoint.collect.normalize` (the Python judge, one event at a time) and
:mod:`touchpoint.collect.engine_import` (the same rules as set-based expressions over a staged
file) both read these declarations, so a limit changed here changes both paths. Where the two
paths compute a value, the property test ``tests/collect/test_engine_import.py`` feeds the same
random items through the HTTP path and the file path and compares what is stored and quarantined,
field by field.

>>> MAX_ID_CHARS, "track" in EVENT_TYPES, ID_FIELDS[0]
(1024, True, 'messageId')
>>> " \\xa0x\\u3000".strip(WHITESPACE)
'x'
"""

from __future__ import annotations

from datetime import datetime, timedelta

EVENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")

MAX_ID_CHARS = 1024
MAX_NAME_CHARS = 512  # event, name, category
MAX_AMOUNT = 1e15  # |revenue| in the typed column
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(2200, 12, 31, 23, 59, 59)
MAX_SEND_DELAY = timedelta(days=366)  # sentAt - timestamp that the clock correction trusts
SEND_DELAY_TOLERANCE = timedelta(minutes=5)  # sentAt a little before timestamp: taken as sent at once
MAX_DEPTH = 64  # nesting levels anywhere in an item

#: Control characters refused in identifiers and names (as a regular-expression class).
CONTROL_CLASS = r"[\x00-\x1f\x7f]"
#: What Python's ``str.strip()`` removes: every character for which ``isspace()`` holds.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())

#: Identifiers: a string or a number, stored as text; "" counts as absent.
ID_FIELDS = ("messageId", "userId", "anonymousId", "groupId", "previousId")
#: Names: a string without control characters, stripped, at most MAX_NAME_CHARS.
NAME_FIELDS = ("event", "name", "category")
#: Times: ISO 8601 text, 1970 to 2200 (UTC).
TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
#: Kept as JSON objects (null or absent allowed).
OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
#: Other top-level strings of the spec.
STRING_FIELDS = ("type", "writeKey")

#: The typed amount: the first of these properties that is a number (or numeric text).
AMOUNT_PATHS = ("revenue", "total", "value")
#: Where the email column comes from, in order: the first string holding "@" wins.
EMAIL_PATHS = ("traits.email", "context.traits.email", "properties.email")
#: Page fields: from properties (page calls only), else from context.page.
PAGE_FIELDS = ("url", "path", "referrer")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
#: context.campaign keys, in the order of UTM_KEYS.
CAMPAIGN_KEYS = ("source", "medium", "name", "term", "content")
