"""schemathesis hooks of the fuzz run (loaded through SCHEMATHESIS_HOOKS), applied to every
request of every phase just before it is sent.

- A write that accepts an `Idempotency-Key` replays its first answer for the same key and
  refuses the key with another body (422 `idempotency_key_reused`). schemathesis draws header
  values from a small space and repeats them, so most generated bodies of those writes were
  refused by the key before their view read them. A well-formed key is made unique per
  request, as a client makes it; a malformed one is kept, so the run still meets the 400
  `idempotency_key_invalid`. The replay itself is tested in tests/idempotency/.
- The stateful phase follows `GET tokens/` to `DELETE tokens/{id}/` and so revoked the very
  token the run signs in with: every later request answered 401 and tested nothing. A delete
  of that token (named by PORTAL_FUZZ_TOKEN_ID) is sent for an id that does not exist.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import schemathesis

HEADER = "idempotency-key"
# What portal/idempotency.py accepts: 1 to 255 printable ASCII characters.
WELL_FORMED = re.compile(r"^[\x21-\x7e]{1,255}$")


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == HEADER and isinstance(value, str) and WELL_FORMED.match(value):
            headers[name] = f"fuzz-{uuid.uuid4()}"
    own = os.environ.get("PORTAL_FUZZ_TOKEN_ID")
    parameters = case.path_parameters or {}
    if own and case.method.upper() == "DELETE" and parameters.get("token_id") == own:
        parameters["token_id"] = str(uuid.uuid4())
