"""The HTML pages of the desk (the API is under /api/v1/)."""

from django.urls import path

from tickets import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/rows/", views.inbox_rows, name="inbox-rows"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:ticket_id>/screen/", views.ticket_screen, name="ticket-screen"),
    path("tickets/<int:ticket_id>/claim/", views.ticket_claim, name="ticket-claim"),
    path("tickets/<int:ticket_id>/close/", views.ticket_close, name="ticket-close"),
    path("tickets/<int:ticket_id>/ignore/", views.ticket_ignore, name="ticket-ignore"),
    path("tickets/<int:ticket_id>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:ticket_id>/notes/", views.ticket_note, name="ticket-note"),
    path("tickets/<int:ticket_id>/template/", views.ticket_template, name="ticket-template"),
    path("tickets/<int:ticket_id>/holding/", views.ticket_holding, name="ticket-holding"),
    path("tickets/<int:ticket_id>/invite/", views.ticket_invite, name="ticket-invite"),
    path("tickets/<int:ticket_id>/reassign/", views.ticket_reassign, name="ticket-reassign"),
    path(
        "tickets/<int:ticket_id>/clear-regulated/",
        views.ticket_clear_regulated,
        name="ticket-clear-regulated",
    ),
    path("tickets/<int:ticket_id>/presence/", views.ticket_presence, name="ticket-presence"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/bell/", views.notifications_bell, name="notifications-bell"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
]
