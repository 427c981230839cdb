"""Local fake servers of the sync destinations (127.0.0.1, real sockets), with faults.

Used by the sync tests and ``bench/sync.py``; they follow ``shared/reference/SYNC_SPECS.md``
(shapes marked unconfirmed there are the fakes' choice, not vendor truth).
"""

from workbench.sync.testing.google import FakeGoogle
from workbench.sync.testing.klaviyo import FakeKlaviyo
from workbench.sync.testing.mailchimp import FakeMailchimp
from workbench.sync.testing.meta import FakeMeta
from workbench.sync.testing.server import FakeServer, Fault, Reply, Request

__all__ = [
    "FakeGoogle",
    "FakeKlaviyo",
    "FakeMailchimp",
    "FakeMeta",
    "FakeServer",
    "Fault",
    "Reply",
    "Request",
]
