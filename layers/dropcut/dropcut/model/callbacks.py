"""Callback capabilities: the per-job callback URL and its check.

The provider signs nothing, so the callback URL itself carries the credential: an HMAC-SHA256 of
the job id under a stack secret. Even an authentic callback is only a hint: the Webhook step asks
the provider before it resumes anything (dropcut.steps.webhook).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from dropcut.model.jobs import is_job_id

#: `url_for(part_id)`: the part's callback URL, when callbacks are on (CallbackSigner.url_for).
CallbackUrlFor = Callable[[str], str]
#: The webhook's route (Powertools' event handler syntax) and the capability's query parameter.
CALLBACK_ROUTE = "/callbacks/<part_id>"
CAPABILITY_PARAM = "cap"


@dataclass(frozen=True)
class CallbackSigner:
    """Makes and checks the per-job callback URLs (`<base>/callbacks/<job id>?cap=<hmac>`)."""

    base_url: str
    secret: SecretStr

    def capability(self, part_id: str) -> str:
        key = self.secret.get_secret_value().encode()
        return hmac.new(key, part_id.encode(), hashlib.sha256).hexdigest()

    def url_for(self, part_id: str) -> str:
        base = self.base_url.rstrip("/")
        return f"{base}/callbacks/{part_id}?{CAPABILITY_PARAM}={self.capability(part_id)}"

    def verify(self, part_id: str, presented: str | None) -> bool:
        """True only for this job's capability; constant time whatever is presented."""
        expected = self.capability(part_id)
        candidate = presented if isinstance(presented, str) else ""
        well_formed = is_job_id(part_id)
        return hmac.compare_digest(expected.encode(), candidate.encode()) and well_formed
