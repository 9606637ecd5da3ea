"""Automations: the right message at the right moment, delivered once, with a holdout that proves it works.

``definition`` (the JSON language), ``store`` (saved definitions), ``triggers`` (who enters, in which arm,
and the outbox rows), ``outbox`` (its states), ``delivery`` (the sender), ``channels`` (SMTP, webhooks),
``consent`` (the purpose rule, unsubscribe tokens), ``template`` (sandboxed Jinja2), ``lift`` (treated vs
held out), ``workflow`` (what the surfaces and the jobs call). See docs/automations.md.
"""
