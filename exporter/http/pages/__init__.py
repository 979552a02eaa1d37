"""Server-rendered pages of the metrics listener: the status page (``/``) and a drift page per model.

    register_page_routes(app, exporter)   # GET / and GET /models/<model>?window=5m&version=v1

HTML with inline SVG and CSS only (docs/pages.md); `mlmon report` writes the model page to a file.
"""

from exporter.http.pages.routes import register_page_routes

__all__ = ["register_page_routes"]
