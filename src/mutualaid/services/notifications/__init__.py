"""Notifications: in-app notices and the messages that carry them out (e-mail, SMS, app).

Owns the outbox (`notifications` rows, written with the change they tell of), its delivery through
Apprise notification URLs per channel (channels.py), the text of each message in the member's
language (messages.py, templates under locales/<locale>/messages/), and the dead letters.
Use cases: notify, notify_many, list_notifications, unread_count, mark_read (outbox.py);
dispatch_notifications, deliver_now, list_dead_letters, retry_dead_letters (dispatch.py);
get_preferences, set_preferences (preferences.py).
"""

from mutualaid.services.notifications.channels import (
    DeliveryFailed,
    LogSender,
    Outbound,
    OutboundMessage,
)
from mutualaid.services.notifications.dispatch import (
    DeadLetter,
    DispatchResult,
    deliver_now,
    dispatch_notifications,
    list_dead_letters,
    retry_dead_letters,
)
from mutualaid.services.notifications.outbox import (
    list_notifications,
    mark_read,
    notify,
    notify_many,
    unread_count,
)
from mutualaid.services.notifications.preferences import (
    MessagePreferences,
    get_preferences,
    set_preferences,
)

__all__ = [
    "DeadLetter",
    "DeliveryFailed",
    "DispatchResult",
    "LogSender",
    "MessagePreferences",
    "Outbound",
    "OutboundMessage",
    "deliver_now",
    "dispatch_notifications",
    "get_preferences",
    "list_dead_letters",
    "list_notifications",
    "mark_read",
    "notify",
    "notify_many",
    "retry_dead_letters",
    "set_preferences",
    "unread_count",
]
