"""The README runs as written.

Every ```sh block of the README is either run here, against a live embedded portal with the
demo data (the portal `make run` starts), or says why not in an HTML comment just above it:

    <!-- tested: tests/readme/test_readme.py -->      run, in order, in one temporary folder
    <!-- not run: <reason> -->                         shown only

`localhost:8000` and `http://127.0.0.1:8000` in a tested block are the live portal's address;
`portal` is the `portal` command of this checkout, with its configuration in the folder.
And `make run` prints its box of addresses last, once the web server answers and the worker
is ready.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.harness import PROJECT_ROOT, LivePortal, free_port
from tests.conftest import _missing

README = PROJECT_ROOT / "README.md"
BLOCK = re.compile(
    r"(?:<!--\s*(?P<marker>tested|not run)[^>]*-->\s*\n)?```sh\n(?P<body>.*?)```", re.S
)

# What each tested block must print, in README order: the answers its `# =>` lines promise.
EXPECTED = [
    ['"email": "founder@fjordai.example"'],
    ['"status": "submitted"', '"status": "approved"', '"code": "auto_approved"'],
    [
        "pap_…",
        '{"accepted":1,"duplicates":0,"rejected":[]}',
        '{"accepted":0,"duplicates":1,"rejected":[]}',
    ],
    ["Signed in as founder@fjordai.example", "no-startups-fast-lane", "approved"],
]


def blocks() -> list[tuple[str | None, str]]:
    return [(m["marker"], m["body"]) for m in BLOCK.finditer(README.read_text())]


def test_every_shell_block_of_the_readme_is_run_or_says_why_not():
    unmarked = [body.splitlines()[0] for marker, body in blocks() if marker is None]
    assert unmarked == [], "mark each ```sh block `<!-- tested: … -->` or `<!-- not run: … -->`"
    assert sum(marker == "tested" for marker, _ in blocks()) == len(EXPECTED)


@pytest.fixture(scope="module")
def readme_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            _missing(f"the README's examples need `{tool}`: apt-get install {tool}")
    portal = LivePortal(tmp_path_factory.mktemp("readme-portal"))
    portal.start()
    try:
        yield portal
    finally:
        portal.stop()


def test_the_readmes_examples_run_as_written(readme_portal: LivePortal, tmp_path: Path):
    # given: the tested blocks, pointed at the live portal
    tested = [body for marker, body in blocks() if marker == "tested"]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PORTAL_CONFIG_DIR": str(tmp_path / "config"),
    }
    for name in ("PORTAL_URL", "PORTAL_TOKEN"):
        env.pop(name, None)

    for index, (body, expected) in enumerate(zip(tested, EXPECTED, strict=True)):
        script = body.replace("http://127.0.0.1:8000", readme_portal.url).replace(
            "localhost:8000", readme_portal.url
        )

        # when
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

        # then
        output = ran.stdout + ran.stderr
        assert ran.returncode == 0, f"README block {index + 1} failed:\n{script}\n{output}"
        for text in expected:
            assert text in output, f"README block {index + 1} did not print {text!r}:\n{output}"


def test_make_run_prints_its_addresses_last_once_everything_is_up(tmp_path: Path):
    # given
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE", "CELERY", "DJANGO_", "PORTAL_TEST"))
    }
    env.update({"PORTAL_VAR_DIR": str(tmp_path), "PORT": str(port), "PY": sys.executable})
    process = subprocess.Popen(
        ["bash", "deploy/embedded.sh"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        # when: it prints its box
        deadline = time.monotonic() + 300
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "The portal runs at" in line:
                break
        box = next(i for i, line in enumerate(lines) if "The portal runs at" in line)

        # then: the web server answers and the worker said it was ready, before the box
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        ready = [i for i, line in enumerate(lines) if re.search(r"embedded@\S+ ready\.", line)]
        assert ready
        assert ready[0] < box
        assert any("Starting development server" in line for line in lines[:box])
        assert f"http://127.0.0.1:{port}/" in lines[box]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
