"""The web dashboard: server-rendered pages over the library, mounted at ``/`` by the HTTP app.

``router`` carries the pages and a lifespan that starts the background refresher (snapshot.py) once
the app's own lifespan has opened the warehouse; ``app.include_router(web.router)`` is all the app needs.
Nothing is fetched from the network: templates, CSS and charts (inline SVG) ship in this package.
"""

from __future__ import annotations

from touchpoint.web import builder, customers, datamap, operations, pages, planner

router = pages.router  # builder, customers, datamap, operations and planner add their routes to it on import

__all__ = ["builder", "customers", "datamap", "operations", "planner", "router"]
