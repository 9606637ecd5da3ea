"""Automations: the right message at the right moment, delivered once, with a holdout that proves it works.

``definition`` (the JSON language), ``store`` (saved definitions), ``triggers`` (who enters, in which arm,
and the outbox rows; ``dates`` and ``schedules`` for the clock's triggers), ``flows`` (flows with state:
waits, branches, splits, decided step by step), ``outbox`` (its states), ``delivery`` (the sender),
``channels`` (SMTP, webhooks), ``actions`` (hand-off and set-trait payloads), ``manual`` (manual audience
steps), ``consent`` (the purpose rule, unsubscribe tokens), ``template`` (sandboxed Jinja2), ``lift``
(treated vs held out, split arms), ``runs`` (each entry's path), ``workflow`` (what the surfaces and the
jobs call). See docs/automations.md.
"""
