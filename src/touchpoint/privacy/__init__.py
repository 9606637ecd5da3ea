"""Privacy by construction: consent per purpose (``consent``, ``purposes``); see docs/privacy.md.

The other parts of docs/privacy.md (access export, erasure, suppression, audit, retention) live in
their own modules here. Callers import the module they need::

    from touchpoint.privacy import consent
    consent.with_consent(wh, people, "marketing_email")   # people + a boolean column, one query
"""
