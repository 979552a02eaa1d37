"""The two listeners: the WSGI apps (app.py) over the ingest service (service.py), label and report routes,
the scrape-time collector and the text exposition, and the server that runs them (server.py)."""
