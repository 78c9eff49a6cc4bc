"""The demo's views: a page with a static file, a health check of the database and the
cache, a write and a read through the database, a view cached in Redis, a session."""

from __future__ import annotations

import json
import time

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notes.models import Note


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "notes/home.html")


def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database (through PgBouncer) and the cache answer, else 503."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        cache.get("healthz")
    except Exception as error:
        return HttpResponse(f"unhealthy: {type(error).__name__}\n", status=503)
    return HttpResponse("ok\n")


@csrf_exempt
@require_http_methods(["POST"])
def notes(request: HttpRequest) -> JsonResponse:
    """A write: the body becomes a note; answers its id."""
    body = request.body.decode() or json.dumps({"at": time.time()})
    note = Note.objects.create(text=body)
    return JsonResponse({"id": note.pk}, status=201)


def note(request: HttpRequest, pk: int) -> JsonResponse:
    """A read of one note by id."""
    found = get_object_or_404(Note, pk=pk)
    return JsonResponse({"id": found.pk, "text": found.text})


def db(request: HttpRequest) -> JsonResponse:
    """One query per request (the load test's database-backed endpoint)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notes_note")
        (count,) = cursor.fetchone()
    return JsonResponse({"notes": count})


def stats(request: HttpRequest) -> JsonResponse:
    """Cached in Redis for 30 s, one entry for every app server (Gunicorn and uWSGI):
    ``rendered`` stays the same until it expires. (cache_page would key the entry by the
    URL each server builds, which differs between them.)"""
    return JsonResponse(
        cache.get_or_set(
            "stats", lambda: {"notes": Note.objects.count(), "rendered": time.time()}, 30
        )
    )


def visits(request: HttpRequest) -> JsonResponse:
    """A counter in the session (the sessions are in Redis)."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})
