"""Notify: the per-job emails (NotificationEmailFor=job), paced below SNS's email limit.

A big drop ends thousands of jobs within minutes; SNS suspends an email subscription that gets
more than 10 messages a second ("Exceeding the limit of 10 messages per second (TPS) for an
email or email-json endpoint will trigger an automatic suspension of the subscription", Amazon
SNS Developer Guide, "Email subscription setup and management"). So the job endings rule sends
each ending to the email queue, not to the topic, and Notify publishes them to the topic at
most EMAILS_PER_SECOND an invocation; with its event source's MaximumConcurrency (2) the stack
sends at most 2 a second. The backlog waits in the queue (a burst of 10,000 endings is mailed
over about 80 minutes). What the address receives is what EventBridge would send the topic:
the event, as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Emails one invocation sends a second (the stack: x MaximumConcurrency, template.yaml).
EMAILS_PER_SECOND = 1.0


@dataclass
class Pacer:
    """At most `per_second` calls of `wait` return each second (the first at once)."""

    per_second: float = EMAILS_PER_SECOND
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float = field(default=0.0, repr=False)

    def wait(self) -> None:
        """Return when the next call is due (sleeping until then)."""
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.per_second


@dataclass(frozen=True)
class NotifyDeps:
    #: An SNS client and the NotificationEmail topic.
    sns: Any
    topic_arn: str


def send_email(deps: NotifyDeps, pacer: Pacer, event: str) -> None:
    """Publish one job event (EventBridge's JSON, as the email queue holds it) to the topic,
    paced by `pacer`. Raises the SNS client's errors (the queue retries the message)."""
    pacer.wait()
    deps.sns.publish(TopicArn=deps.topic_arn, Message=event)
