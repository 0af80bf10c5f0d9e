"""The overview's queue list (edge/routes/reports.py): Agora's work and dead-letter queues only."""

from __future__ import annotations

from edge.dead_letters import QueueDepth, depth_of
from edge.routes.reports import agora_queues


def test_only_work_queues_with_a_dead_letter_queue_and_those_are_listed() -> None:
    names = [
        "orders.place_order_v1",
        "orders.place_order_v1.dlq",
        "agora.edge.replies.4f1c",
        "amq.gen-Xk2",
        "agora.delay.5s",
        "agora.unrouted",
        "users.register_user_v1.dlq",  # its work queue is gone (retired): still worth seeing
    ]
    shown = agora_queues([QueueDepth(n, 0, 0) for n in names])
    expected = ["orders.place_order_v1", "orders.place_order_v1.dlq", "users.register_user_v1.dlq"]
    assert [q.queue for q in shown] == expected


def test_rates_come_from_the_management_apis_message_stats() -> None:
    row = {
        "name": "orders.place_order_v1",
        "messages": 3,
        "consumers": 2,
        "message_stats": {"publish_details": {"rate": 12.345}, "deliver_get_details": {"rate": 11.0}},
    }
    assert depth_of(row) == QueueDepth("orders.place_order_v1", 3, 2, 12.35, 11.0)
    assert depth_of({"name": "idle", "messages": None, "consumers": 0}) == QueueDepth("idle", 0, 0, 0.0, 0.0)
