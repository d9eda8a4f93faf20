"""`python -m gateway.published [asyncapi|schema]`: print a published document as JSON."""

from __future__ import annotations

import json
import sys

from gateway.published.asyncapi import asyncapi_document
from gateway.published.schema import protocol_schema

if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "asyncapi"
    document = asyncapi_document() if which == "asyncapi" else protocol_schema()
    print(json.dumps(document, indent=2))
