"""Message templates: Jinja2 in its immutable sandbox, checked when a definition is saved.

A template sees ``traits`` (the profile's traits and columns), ``predictions`` (the latest CLV run's
row for the profile), ``profile_id``, ``automation`` and ``unsubscribe_url``. A missing trait renders
as empty text. Templates are data from users, so they run in Jinja2's ``ImmutableSandboxedEnvironment``
(no attribute starting with ``_``, no mutation of what they are given) and are refused at save time
when they reach for private attributes, so ``{{ ''.__class__ }}`` is an error naming the field, not
an empty string at send time. HTML parts are autoescaped; text parts are not.

>>> check("$.subject", "Hi {{ traits.first_name }}")
>>> render("Hi {{ traits.first_name }}{{ traits.nope }}!", {"traits": {"first_name": "Ada"}})
'Hi Ada!'
>>> render("<b>{{ traits.name }}</b>", {"traits": {"name": "<script>"}}, html=True)
'<b>&lt;script&gt;</b>'
>>> try:
...     check("$.text", "{{ ''.__class__ }}")
... except InvalidDefinition as exc:
...     print(exc.message)
$.text: the template reaches for '__class__', which templates may not use
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from touchpoint.errors import InvalidDefinition, InvalidInput

MAX_OUTPUT = 1_000_000  # characters one rendered part may have


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, stricter: an unsafe attribute raises instead of rendering as empty text."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is unsafe")


@lru_cache(maxsize=2)
def _env(html: bool) -> ImmutableSandboxedEnvironment:
    return _Sandbox(autoescape=html, trim_blocks=False)


def _private(node: nodes.Node) -> str | None:
    """The first private attribute or key the template names, if any."""
    for sub in node.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(sub, nodes.Getattr) and sub.attr.startswith("_"):
            return sub.attr
        if isinstance(sub, nodes.Getitem) and isinstance(sub.arg, nodes.Const) and str(sub.arg.value).startswith("_"):
            return str(sub.arg.value)
    return None


def check(path: str, text: str) -> None:
    """Raise :class:`InvalidDefinition` (naming ``path``) when ``text`` is not a template we will render."""
    try:
        tree = _env(False).parse(text)
    except TemplateSyntaxError as exc:
        raise InvalidDefinition(
            f"{path}: the template does not parse (line {exc.lineno}: {exc.message})",
            hint="see the Jinja2 template syntax; e.g. 'Hello {{ traits.first_name }}'",
            path=path,
        ) from None
    name = _private(tree)
    if name is not None:
        raise InvalidDefinition(
            f"{path}: the template reaches for {name!r}, which templates may not use",
            hint="templates read traits, predictions, profile_id and unsubscribe_url only",
            path=path,
        )


@lru_cache(maxsize=512)
def _compiled(text: str, html: bool) -> Template:
    """A template compiled once (compiling costs ~100 times a render; a run renders one step thousands of times)."""
    return _env(html).from_string(text)


def render(text: str, context: dict[str, Any], *, html: bool = False) -> str:
    """``text`` rendered with ``context`` in the sandbox; a sandbox violation is :class:`InvalidInput`."""
    try:
        out = _compiled(text, html).render(**context)
    except SecurityError as exc:
        raise InvalidInput(
            f"the template was stopped by the sandbox: {exc}", hint="fix the automation's template"
        ) from None
    if len(out) > MAX_OUTPUT:
        raise InvalidInput(f"the rendered template has {len(out):,} characters (limit {MAX_OUTPUT:,})")
    return out


def render_tree(value: Any, context: dict[str, Any]) -> Any:
    """A JSON value with every string rendered as a template (a webhook's body)."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, dict):
        return {k: render_tree(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_tree(v, context) for v in value]
    return value
