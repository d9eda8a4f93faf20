"""`python -m speech_client ...`, the same as the `speech-client` command."""

from speech_client.cli import main

raise SystemExit(main())
