"""Await every SDK object under asyncio.run, then exit: the exit code must be 0, every time."""

from __future__ import annotations

import asyncio
import os

from sdk_objects import build, use


async def main() -> None:
    objects = build(os.environ["REFRESH_TOKEN"])
    await use(objects, objects.verifier)


if __name__ == "__main__":
    asyncio.run(main())
