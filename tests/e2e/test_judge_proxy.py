"""The fault drill's judge proxy (examples/cpu/judge_proxy.py), run as a real process in front of the loopback fake
judge: it forwards requests unchanged, answers exactly --serve chat requests, and goes down (exit status 3, port
closed) when the next one arrives. Fast: no vLLM, no verl."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import judge_proxy  # examples/cpu (on pytest's path)

PROXY = Path(judge_proxy.__file__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(upstream: str, serve: int | None, log: Path | None = None) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cmd = [sys.executable, str(PROXY), "--upstream", upstream, "--port", str(port)]
    if serve is not None:
        cmd += ["--serve", str(serve)]
    if log is not None:
        cmd += ["--log", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == f"listening on {port}"
    return proc, port


def _chat(port: int, text: str) -> dict:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def upstream(fake_judge):
    return fake_judge.base_url.removesuffix("/v1")


def test_forwards_exactly_serve_requests_then_goes_down(fake_judge, upstream, tmp_path):
    fake_judge.default = ("reply", "<answer>0.4</answer>")
    log = tmp_path / "requests.jsonl"
    proc, port = _start(upstream, serve=2, log=log)
    try:
        for i in range(2):
            reply = _chat(port, f"question {i}")
            assert reply["choices"][0]["message"]["content"] == "<answer>0.4</answer>"
        # the upstream received both, unchanged
        assert [r["messages"][0]["content"] for r in fake_judge.requests] == ["question 0", "question 1"]
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            _chat(port, "question 2")
        assert proc.wait(timeout=10) == 3
        assert len(fake_judge.requests) == 2  # the third never reached the judge
        # every arrival is logged, the one that tripped the outage included
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert records == [{"n": i + 1, "text": f"question {i}", "image": None} for i in range(3)]
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        proc.kill()
        proc.wait()


def test_without_serve_it_keeps_forwarding_and_passes_statuses(fake_judge, upstream):
    proc, port = _start(upstream, serve=None)
    try:
        for i in range(5):
            _chat(port, f"q{i}")
        fake_judge.push(("status", 503, {}))
        with pytest.raises(urllib.error.HTTPError) as err:
            _chat(port, "q5")
        assert err.value.code == 503
        time.sleep(0.2)
        assert proc.poll() is None
        assert len(fake_judge.requests) == 6
    finally:
        proc.kill()
        proc.wait()


def test_log_records_the_image_digest():
    import hashlib

    proxy = judge_proxy
    url = "data:image/png;base64,AAAA"
    body = json.dumps({"messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "Q"}, {"type": "image_url", "image_url": {"url": url}}]},
    ]}).encode()  # fmt: skip
    assert proxy.request_record(7, body) == {"n": 7, "text": "Q", "image": hashlib.sha1(url.encode()).hexdigest()}
    assert proxy.request_record(1, b"not json") == {"n": 1, "text": None, "image": None}
