"""Device sign-in against Logto 1.37.1, which predates the device flow (Logto 1.38).

The SDK must say so clearly, before any request beyond discovery, and the command line must exit
with a usage error rather than a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RealLogto, config_for
from logto_rs import LogtoConfigError
from logto_rs.device import start_device_sign_in_blocking


def test_a_logto_without_the_device_flow_is_named_clearly(logto: RealLogto, tmp_path: Path) -> None:
    with pytest.raises(LogtoConfigError, match="Logto 1.38 or later"):
        start_device_sign_in_blocking(config_for(logto, "native"))
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LOGTO_")}
    env = {
        **clean,
        "LOGTO_ENDPOINT": logto.endpoint,
        "LOGTO_APP_ID": logto.native,
        "LOGTO_CONFIG_DIR": str(tmp_path),
        "LOGTO_TOKEN_STORE": "file",
    }
    result = subprocess.run(
        [sys.executable, "-m", "logto_rs", "login"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert "device sign-in needs Logto 1.38 or later" in result.stderr
