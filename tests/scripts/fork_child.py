"""Fork after using every SDK object, optionally with a request in flight in another thread.

Usage: fork_child.py idle|in-flight. Prints one JSON line: the child's exit status and what the
parent observed. The child must finish its calls within 20 s (SIGALRM kills a hung child).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
import traceback

from sdk_objects import build, use, use_blocking


def main() -> None:
    mode = sys.argv[1]
    parent_objects = build(os.environ["PARENT_REFRESH_TOKEN"])
    child_objects = build(os.environ["CHILD_REFRESH_TOKEN"])
    # Warm every object in the parent: connection pools, runtime threads, discovery, keys.
    asyncio.run(use(parent_objects, parent_objects.verifier))
    use_blocking(parent_objects, parent_objects.verifier)
    asyncio.run(use(child_objects, child_objects.verifier))

    in_flight: dict[str, object] = {}
    thread = None
    if mode == "in-flight":
        # The test delays the provider's userinfo answers: this request is in flight at fork.
        def slow_call() -> None:
            try:
                in_flight["sub"] = parent_objects.client.blocking.fetchUserInfo().sub
            except BaseException as error:  # reported to the test
                in_flight["error"] = repr(error)

        thread = threading.Thread(target=slow_call)
        thread.start()
        time.sleep(0.3)

    pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        try:
            asyncio.run(use(child_objects, child_objects.unused_verifier))
            use_blocking(child_objects, child_objects.verifier)
            asyncio.run(use(child_objects, child_objects.verifier))
        except BaseException:
            traceback.print_exc()
            os._exit(3)
        os._exit(0)

    _, status = os.waitpid(pid, 0)
    if thread is not None:
        thread.join(30)
    # The parent keeps working after its child did.
    asyncio.run(use(parent_objects, parent_objects.verifier))
    use_blocking(parent_objects, parent_objects.verifier)
    print(json.dumps({"child_status": status, "in_flight": in_flight}), flush=True)


if __name__ == "__main__":
    main()
