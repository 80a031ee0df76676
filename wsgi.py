"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...` (the factory is `moralcredit.create_app`)."""

from moralcredit import create_app

app = create_app()
