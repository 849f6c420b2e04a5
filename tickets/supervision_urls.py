"""Supervisors' pages: reports, staffing, the wall; a ticket's printable evidence."""

from django.urls import path

from tickets import supervision_views as views

app_name = "supervision"

urlpatterns = [
    path("reports/", views.reports, name="reports"),
    path("reports/staffing/", views.staffing, name="staffing"),
    path("wall/", views.wall, name="wall"),
    path("wall/panel/", views.wall_panel, name="wall-panel"),
    path("tickets/<int:ticket_id>/evidence/", views.evidence, name="evidence"),
]
