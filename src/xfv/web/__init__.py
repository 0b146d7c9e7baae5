"""The web platform: FastAPI app with a REST API under ``/api``, Jinja2 pages and static assets."""
