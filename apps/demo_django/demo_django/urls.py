from django.urls import path
from notes import views

urlpatterns = [
    path("", views.home),
    path("healthz", views.healthz),
    path("notes", views.notes),
    path("notes/<int:pk>", views.note),
    path("db", views.db),
    path("stats", views.stats),
    path("visits", views.visits),
]
