"""The queues the shop's workers consume, and which task goes to which.

Queues are named for who waits on them and how long they may wait; each has
its own worker (Procfile, docker-compose.yml), so a slow or stopped consumer
never delays another. A task missing from ROUTES goes to ``default``; a route
naming a queue missing from QUEUES is refused when the Celery app loads.
"""

from kombu import Exchange, Queue

# name -> what it carries. Order is the order workers are listed in.
QUEUES: dict[str, str] = {
    "critical": "money and anything a customer is waiting on right now",
    "default": "ordinary work with no queue of its own",
    "low": "housekeeping that can wait minutes: sweeps, reports",
    "emails": "customer email; slow SMTP must not hold up anything else",
    "inventory": "stock movement bookkeeping after orders and cancellations",
    "analytics": "sales records for reporting",
    "search": "search index writes",
    "exports": "CSV exports, long-running",
}

ROUTES: dict[str, str] = {
    "notifications.tasks.send_welcome_email_task": "emails",
    "orders.tasks.send_order_confirmation_task": "emails",
    "orders.tasks.send_order_cancellation_task": "emails",
    "orders.tasks.record_order_analytics_task": "analytics",
    "orders.tasks.charge_subscription_task": "critical",
    "orders.tasks.bill_due_subscriptions_task": "low",
    "shop.tasks.record_stock_movements_task": "inventory",
    "shop.tasks.update_search_index_task": "search",
    "shop.tasks.reindex_stale_products_task": "low",
    "shop.tasks.check_dead_letter_depth_task": "low",
    # Not low: after an outage it carries order emails that are already late,
    # and low may be busy with a long index sweep. Not critical either: the
    # request's own relay is the fast path, this is the catch-up.
    "shop.tasks.relay_outbox_task": "default",
}


def check_routes(queues: dict[str, str], routes: dict[str, str]) -> None:
    """Raise ValueError when a route names a queue that is not declared."""
    unknown = {task: queue for task, queue in routes.items() if queue not in queues}
    if unknown:
        raise ValueError(f"tasks routed to undeclared queues: {unknown}")


check_routes(QUEUES, ROUTES)

# Each queue gets its own direct exchange and routing key, the shape that
# behaves the same on Redis and on RabbitMQ.
CELERY_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
)
CELERY_ROUTES = {
    task: {"queue": queue, "routing_key": queue} for task, queue in ROUTES.items()
}
