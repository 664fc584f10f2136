"""WSGI entry point: ``gunicorn -c gunicorn.conf.py app:app`` (see ``make serve``)."""

from bot.web import create_app

app = create_app()
