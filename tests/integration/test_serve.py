"""`emojibot serve` as an operator runs it: a real process, real signals, exit statuses."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from bot.store.repository import migrate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path, url, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOJIBOT_")}
    env.update(EMOJIBOT_DATABASE_URL=url, EMOJIBOT_PORT=str(port), EMOJIBOT_HOST="127.0.0.1", TF_CPP_MIN_LOG_LEVEL="3")
    return env


def test_sigterm_drains_and_exits_0(tmp_path):
    port = _free_port()
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.sqlite'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=_env(tmp_path, url, port),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert ready == 200, proc.stdout.read() if proc.poll() is not None else "not ready in 120 s"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert b"emojibot_model_info" in r.read()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "drained: 0 events dropped" in out
    assert (tmp_path / "serve.sqlite.salt").stat().st_mode & 0o777 == 0o600  # the salt, beside the file


def test_a_read_only_database_stops_serve_with_one_line_naming_the_setting(tmp_path):
    db = tmp_path / "ro.sqlite"
    migrate(f"sqlite+aiosqlite:///{db}")
    url = f"sqlite+aiosqlite:///file:{db}?mode=ro&uri=true"  # SQLite's own read-only mode (root ignores chmod)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=_env(tmp_path, url, _free_port()),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stderr
    assert last.startswith("emojibot: error: EMOJIBOT_DATABASE_URL:") and "not writable" in last
    assert "Traceback" not in proc.stderr
