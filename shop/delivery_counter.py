"""How many times a task message was handed to a worker.

Redis redelivers a late-acknowledged message whenever its worker dies, and
has no delivery limit: a message that kills its worker every time would loop
forever. Each delivery of one try of a task (task id and retry number) is
counted here, in Redis, before the task runs; the base task dead-letters a
message counted more than SHOP_TASK_MAX_DELIVERIES times.
"""

import redis
from django.conf import settings

_client: redis.Redis | None = None
# Long enough to outlive any redelivery, short enough to clean up after itself.
_TTL_SECONDS = 7 * 24 * 3600


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.SHOP_TASK_STATE_REDIS_URL)
    return _client


def count(task_id: str, retries: int) -> int:
    """Count one more delivery of this try of the task and return the total."""
    key = f"task-deliveries:{task_id}:{retries}"
    pipe = _redis().pipeline()
    pipe.incr(key)
    pipe.expire(key, _TTL_SECONDS)
    deliveries, _ = pipe.execute()
    return int(deliveries)
