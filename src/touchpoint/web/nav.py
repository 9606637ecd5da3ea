"""The dashboard's pages, in navigation order: a new capability adds one :class:`NavPage` here.

The navigation bar is built from :data:`PAGES`, showing each page to the roles allowed to open it; the
route itself checks the role again on the server (hiding a link is not authorization).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavPage:
    path: str
    label: str
    role: str = "viewer"  # the least role that may open it


PAGES: tuple[NavPage, ...] = (
    NavPage("/", "Overview"),
    NavPage("/customers", "Customers"),
    NavPage("/experiments", "Experiments"),
    NavPage("/journeys", "Journeys"),
    NavPage("/mmm", "Marketing mix"),
    NavPage("/audiences", "Audiences"),
    NavPage("/automations", "Automations"),
    NavPage("/plan", "Plan"),
    NavPage("/data", "Data"),
    NavPage("/datamap", "Data map"),
    NavPage("/users", "Users", role="admin"),
)
