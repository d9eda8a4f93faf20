"""`python -m asr_cpu` / `asr-cpu`: run the server until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from asr_cpu.server import serve
from asr_cpu.settings import parse_settings


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
