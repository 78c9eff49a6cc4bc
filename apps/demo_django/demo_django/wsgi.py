"""The WSGI callable Gunicorn and uWSGI serve (python_app_entrypoint:
demo_django.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_django.settings")
application = get_wsgi_application()
