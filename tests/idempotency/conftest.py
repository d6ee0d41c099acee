from tests.decisions.conftest import (  # noqa: F401 - the site, program and helpers
    decide,
    draft,
    fast_lane,
    founder,
    pool,
    reviewer,
    startup,
    today,
)
from tests.usage.conftest import (  # noqa: F401 - an allocation, a scheduler and its records
    allocation,
    record,
    scheduler,
    scheduler_client,
    scheduler_token,
)
