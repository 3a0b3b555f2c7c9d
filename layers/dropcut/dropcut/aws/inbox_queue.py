"""The inbox queue's dead-letter queue, as the reconciler reads it (dropcut.services.dead_letters).

An inbox event goes to the dead-letter queue after Submit failed on it `maxReceiveCount` (5)
times (template.yaml, InboxQueue). SQS keeps a message's attributes when it moves it there, so
the number of times dropcut sent it back travels with the message (`REDRIVES_ATTRIBUTE`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: The message attribute counting how many times an event was sent back from the dead letters.
REDRIVES_ATTRIBUTE = "dropcut-redrives"
#: SQS's limits: 10 messages a receive, a delay of at most 900 s (SendMessage, DelaySeconds).
MAX_MESSAGES_PER_RECEIVE = 10
MAX_DELAY_SECONDS = 900


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered inbox event: its body (the S3 notification, as S3 sent it), how many
    times it was sent back already, and the handle that deletes it."""

    message_id: str
    body: str
    redrives: int
    receipt_handle: str


@dataclass(frozen=True)
class InboxQueues:
    """The inbox queue and its dead-letter queue (their URLs: template.yaml's Globals)."""

    sqs: SQSClient
    inbox_url: str
    dead_letter_url: str

    def dead_letters(self, limit: int) -> Iterator[DeadLetter]:
        """Up to `limit` dead-lettered events, each hidden from other readers for 5 minutes
        (a reader that dies before deleting one leaves it for the next pass)."""
        taken = 0
        while taken < limit:
            answer = self.sqs.receive_message(
                QueueUrl=self.dead_letter_url,
                MaxNumberOfMessages=min(MAX_MESSAGES_PER_RECEIVE, limit - taken),
                MessageAttributeNames=[REDRIVES_ATTRIBUTE],
                VisibilityTimeout=300,
                WaitTimeSeconds=0,
            )
            messages = answer.get("Messages", [])
            if not messages:
                return
            for message in messages:
                taken += 1
                attribute = message.get("MessageAttributes", {}).get(REDRIVES_ATTRIBUTE)
                count = attribute.get("StringValue") if attribute is not None else None
                yield DeadLetter(
                    message_id=message["MessageId"],
                    body=message.get("Body", ""),
                    redrives=_count(count),
                    receipt_handle=message["ReceiptHandle"],
                )

    def send_back(self, letter: DeadLetter, delay_seconds: int) -> None:
        """Put the event back in the inbox queue, delivered after `delay_seconds` (at most 900),
        counted once more; then delete it from the dead letters (a crash in between sends it
        twice, which Submit takes as a repeated event)."""
        self.sqs.send_message(
            QueueUrl=self.inbox_url,
            MessageBody=letter.body,
            DelaySeconds=min(delay_seconds, MAX_DELAY_SECONDS),
            MessageAttributes={
                REDRIVES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(letter.redrives + 1)}
            },
        )
        self.drop(letter)

    def drop(self, letter: DeadLetter) -> None:
        """Delete the event from the dead letters (it has been dealt with)."""
        self.sqs.delete_message(QueueUrl=self.dead_letter_url, ReceiptHandle=letter.receipt_handle)


def _count(value: str | None) -> int:
    """The redrive count an attribute holds (anything unreadable counts as the most: a message
    that crossed a boundary is not trusted to keep itself alive)."""
    try:
        return max(0, int(value)) if value is not None else 0
    except ValueError:
        return 1_000
