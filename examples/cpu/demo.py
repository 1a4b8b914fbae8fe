"""`make demo`: one real SophiaVL-R1 training run through verl 0.9.1 on a CPU-only machine (docs/cpu.md).

Run with the e2e venv's Python (examples/cpu/setup_venv.sh makes it):

    .venv-e2e/bin/python examples/cpu/demo.py [--steps 2] [--timeout 1500] [--deadline S] [--workdir data/e2e] \
        [--assets DIR] [--rm external|verl] [--recipe sophiavl] [--fault-after-step K] [--failed-sessions] \
        [HYDRA_OVERRIDE ...]

What it does, in order:
  1. prepares the embedded sample dataset (the command `make prepare-data` runs) into ASSETS/sophiavl and keeps its
     first multiple-choice rows, images included (--text-only: without images; --problem-type: another type);
  2. builds a tiny random Qwen2.5-VL policy and thinking reward model, offline (--text-only: Qwen2); the policy
     gets a few seconds of warm-up on the answer format, so that some of its answers are right. Steps 1 and 2 are
     skipped when --assets DIR already holds rows and models built alike (ASSETS defaults to WORKDIR);
  3. --rm external (default): starts the thinking RM behind a real vLLM (CPU) OpenAI-compatible server on 127.0.0.1;
     --rm verl: nothing here, verl serves the TRM itself on its own resource pool (the recipe's default);
  4. runs `python -m verl.trainer.main_ppo +recipe=sophiavl <CPU and tiny-size overrides>` under a timeout;
     with --fault-after-step K: checkpoints every step, the judge is reached through examples/cpu/judge_proxy.py, which
     goes down at the first judge call of step K + 1, so the run must stop on the trust sampler's failure-rate error;
     then the proxy comes back and the same command with trainer.resume_mode=auto must run steps K + 1..--steps;
     with --failed-sessions: rollout sessions fail on purpose (examples/cpu/agent_loops/failing_agent_loop.py, verl's
     single-turn agent loop loaded through actor_rollout_ref.rollout.agent.agent_loop_config_path): some groups
     lose every session, the others one; verl pads the batch and the run must train through every step;
  5. stops every process it started, also on failure, Ctrl-C or timeout: each child runs in its own process
     group, and every process that carries one of this run's marker values (Ray's raylet and workers, vLLM's engine
     processes; one value for the judge, one per training run) is killed;
  6. then prints a per-step summary from verl's file logger (metrics.jsonl; in the fault drill one file per training
     run, metrics.run1.jsonl and metrics.run2.jsonl, merged, because verl's file logger truncates its file when a
     run starts) and the judge server's request count (read before the judge was stopped), and writes
     WORKDIR/summary.json.

Network: nothing listens beyond loopback. The judge and the proxy bind 127.0.0.1; Ray's nodes register under
127.0.0.1 (RAY_LOOPBACK_ENV, and ray_cluster.py's node_ip_address), so Ray's own servers and every server verl starts
bind there; the local Ray starts no dashboard.

Time limits: each stage has its own (preparation 300 + 120 s, models 300 s, judge start-up 600 s, training
--timeout per training run); --deadline S caps them all, so that every stage ends within S seconds of the start (the
stopping of step 5 comes after, at most about a minute). The e2e tests pass a deadline below their own timeout.

Exit status: 0 when training exited 0 and every step logged its metrics (fault drill: the first run stopped on the
judge outage and the resumed run finished); otherwise non-zero.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
MARKER = "SOPHIAVL_E2E_RUN"  # every process this run starts inherits it; the cleanup looks for it

# What the summary shows per step: (column, metric key in verl's logged metrics).
SUMMARY_COLUMNS = [
    ("outcome", "trust/outcome_mean"),
    ("thinking", "trust/thinking_mean"),
    ("gamma", "trust/gamma_mean"),
    ("alpha_t", "trust/alpha_t"),
    ("untrusted", "trust/downweighted_share"),
    ("judge_req", "trust/rm_requested_count"),
    ("judge_fail", "trust/rm_failed_count"),
    ("R", "trust/reward_mean"),
    ("failed_groups", "trust/session_failed_groups"),
    ("pad_rows", "trust/pad_rows"),
    ("pg_loss", "actor/pg_loss"),
    ("grad_norm", "actor/grad_norm"),
    ("step_s", "timing_s/step"),
]


def log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deadline:
    """The time left to the run's stages: each stage waits at most min(its own limit, what is left)."""

    def __init__(self, seconds: float | None):
        self.end = None if seconds is None else time.time() + seconds

    def cap(self, limit: float) -> float:
        if self.end is None:
            return limit
        left = self.end - time.time()
        if left <= 0:
            raise SystemExit("the run's --deadline passed before the next stage")
        return min(limit, left)


def run_step(cmd: list[str], env: dict, timeout: float) -> None:
    """A short preparation step: its own process group, killed whole on timeout."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise SystemExit(f"step timed out after {timeout:.0f} s: {' '.join(cmd)}") from None
    except BaseException:
        kill_group(proc)
        raise
    if rc != 0:
        raise SystemExit(f"step failed (exit {rc}): {' '.join(cmd)}")


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _proc_pids(filename: str, matches) -> list[int]:
    """Live processes other than this one whose /proc/PID/FILENAME (bytes) satisfies ``matches``; processes gone
    or not readable meanwhile are left out."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/{filename}", "rb") as f:
                if matches(f.read()):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def marked_pids(run_id: str) -> list[int]:
    """Processes whose environment carries MARKER=run_id (all descendants, also those that left our groups)."""
    needle = f"{MARKER}={run_id}".encode()
    return _proc_pids("environ", lambda environ: needle in environ.split(b"\0"))


def pids_naming(text: str) -> list[int]:
    """Live processes whose command line contains text (zombies have an empty one); the e2e tests' independent scan
    (tests/support/sophiavl_testing/e2e_harness.py)."""
    needle = text.encode()
    return _proc_pids("cmdline", lambda cmdline: needle in cmdline)


def kill_marked(run_id: str) -> list[int]:
    """Kills what is left of this run; returns the pids that were still alive."""
    left = marked_pids(run_id)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        while time.time() < deadline and marked_pids(run_id):
            time.sleep(0.2)
        if not marked_pids(run_id):
            break
    return left


def stop_all(procs, markers, left=(), say=log) -> list[int]:
    """The end of a run, also on failure or interrupt: ignores SIGTERM from here on (a second one must not cut the
    stopping short), stops each process group in ``procs`` (None: never started), then kills whatever still carries
    one of the ``markers`` values. Returns ``left`` plus the pids that scan found alive, and reports them with
    ``say`` when there are any."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for proc in procs:
        if proc is not None:
            kill_group(proc)
    left = list(left)
    for marker in markers:
        left += kill_marked(marker)
    if left:
        say(f"killed {len(left)} leftover process(es) of this run: {left}")
    return left


def new_run(workdir: Path, stale: tuple[str, ...]) -> tuple[float, str, Path]:
    """The start of a run: its start time (time.time()), a fresh run id (12 hex digits, the marker value) and the
    resolved work folder, created if missing, without the files named in ``stale`` (an earlier run's)."""
    start = time.time()
    run_id = uuid.uuid4().hex[:12]
    work = workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (work / name).unlink(missing_ok=True)
    return start, run_id, work


# Lines of the training log shown on the console (all of it is in WORKDIR/train.log; DEMO_VERBOSE=1 shows all).
ECHO_WORDS = (b"step:", b"Error: ", b"Traceback", b"Training Progress")


def pump(stream, path: Path, echo: bool) -> threading.Thread:
    """Copies a child's output to a log file and, when echo, its important lines to our stdout."""
    verbose = bool(os.environ.get("DEMO_VERBOSE"))

    def _run():
        with open(path, "ab") as out:
            for line in iter(stream.readline, b""):
                out.write(line)
                out.flush()
                shown = any(word in line for word in ECHO_WORDS) and b"Warning" not in line
                if echo and (verbose or shown):
                    sys.stdout.buffer.write(line[:2000])
                    sys.stdout.flush()

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    return thread


def spawn(cmd: list[str], env: dict, log_path: Path, echo: bool = False) -> subprocess.Popen:
    """Starts cmd in the repository, in its own process group (kill_group stops it whole), its stdout and stderr
    appended to log_path (pump; echo: its important lines also on our stdout)."""
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    pump(proc.stdout, log_path, echo=echo)
    return proc


def start_judge(model_dir: Path, port: int, env: dict, log_path: Path) -> subprocess.Popen:
    # A real vLLM OpenAI-compatible server. It is plain vLLM: no verl, no weight sync, so none of the
    # verl_cpu_support hacks are needed here. The reward manager sends it the question's image, the question and
    # the response; with structured output its reply is always <answer>0.x</answer>.
    cmd = [
        PY, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", "thinking-rm",
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--enforce-eager", "--max-model-len", "4096",
        "--max-num-seqs", "16", "--disable-uvicorn-access-log",
        # whole prompts only: vLLM 0.30 on CPU crashes ("CPU Generator does not use offset", engine dead) when it
        # splits the prompt of a seeded request (reward.thinking_rm.seed) across steps (chunked prefill)
        "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192",
    ]  # fmt: skip
    return spawn(cmd, env, log_path)


def wait_ready(proc: subprocess.Popen, url: str, timeout: float, log_path: Path) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"judge server exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"judge server not ready after {timeout:.0f} s; see {log_path}")


def judge_request_count(base: str) -> float:
    """Chat requests the judge server finished, from vLLM's Prometheus counter vllm:request_success_total."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("vllm:request_success_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


RECIPE_DIR = REPO / "recipes" / "config" / "recipe"
AGENT_LOOPS = HERE / "agent_loops"  # failing_agent_loop.py and its verl agent loop config failing.yaml


def recipe_uses_judge(recipe: str, overrides: list[str]) -> bool:
    """Whether the run asks a thinking reward model: ``reward.thinking_rm.enable`` as the command-line overrides
    set it, else as the recipe file itself sets it (its own keys, not those it inherits), else true. A recipe
    without ``reward.thinking_rm.enable`` (``sophiavl``, ``sophiavl_official``) uses the judge."""
    key = "reward.thinking_rm.enable="
    for item in reversed(overrides):
        if item.lstrip("+~").startswith(key):
            return item.split("=", 1)[1].strip().lower() not in ("false", "0", "no", "off")
    path = RECIPE_DIR / f"{recipe}.yaml"
    if not path.exists():
        raise SystemExit(f"--recipe {recipe}: no {path}")
    from omegaconf import OmegaConf

    value = OmegaConf.select(OmegaConf.load(path), "reward.thinking_rm.enable", default=True)
    return bool(value)


JUDGE_SEED = 7
# The judge's client keys, the same for both topologies: constrained output (a random judge still answers a parseable
# <answer>0.x</answer>), a short reply, a generous timeout for 2 busy cores.
# Sampled at temperature 1 with a fixed seed (vLLM seeds each request: the same request gets the same score), so that
# the random judge's scores differ between responses (JUDGE_INIT_STD) and repeat between runs.
JUDGE_CLIENT = ["reward.thinking_rm.constrain_output=True", "reward.thinking_rm.max_tokens=16",
                "reward.thinking_rm.timeout_s=120", "reward.thinking_rm.temperature=1.0",
                f"reward.thinking_rm.seed={JUDGE_SEED}"]  # fmt: skip


def judge_overrides(rm: str, judge_url: str | None, judge_model: Path) -> list[str]:
    """The reward-model overrides of one topology.

    ``rm="external"``: the judge is an OpenAI-compatible server at ``judge_url`` (None: a recipe without a thinking
    RM, nothing to add but switching verl's RM off). ``rm="verl"``: the recipe's default, verl serves the TRM
    (``judge_model``) with its own vLLM (CPU) replica on its own resource pool of one fake GPU, and the manager
    reaches it through verl's reward router (``reward.thinking_rm.base_url=null``).
    """
    if rm == "external":
        off = [
            "reward.reward_model.enable=False",  # the judge is external (base_url): no verl-served RM
            "reward.reward_model.enable_resource_pool=False",  # else verl still reserves its GPUs ("less than desired")
        ]
        if judge_url is None:
            return off
        return [*off, f"reward.thinking_rm.base_url={judge_url}", "reward.thinking_rm.model=thinking-rm", *JUDGE_CLIENT]
    if rm != "verl":
        raise ValueError(f"--rm must be external or verl, got {rm!r}")
    rm_rollout = "reward.reward_model.rollout"
    return [
        "reward.reward_model.enable=True",
        "reward.reward_model.enable_resource_pool=True",  # its own pool: one more fake GPU (num_gpus=2 below)
        "reward.reward_model.nnodes=1",
        "reward.reward_model.n_gpus_per_node=1",
        f"reward.reward_model.model_path={judge_model}",
        "reward.thinking_rm.base_url=null",  # the manager asks verl's reward router
        "reward.thinking_rm.model=null",  # the served name is reward.reward_model.model_path
        *JUDGE_CLIENT,
        # the same CPU settings and reasons as the policy's rollout below
        f"{rm_rollout}.name=vllm",
        f"{rm_rollout}.dtype=float32",
        f"{rm_rollout}.enforce_eager=True",
        f"{rm_rollout}.gpu_memory_utilization=0.1",
        f"{rm_rollout}.tensor_model_parallel_size=1",
        f"{rm_rollout}.max_model_len=4096",
        f"{rm_rollout}.max_num_batched_tokens=4096",
        f"{rm_rollout}.max_num_seqs=16",
        f"+{rm_rollout}.enable_sleep_mode=False",
        f"{rm_rollout}.enable_chunked_prefill=False",  # seeded judge requests: see start_judge
        f"{rm_rollout}.free_cache_engine=False",
    ]


def training_command(args, data_dir: Path, models: Path, judge_url: str | None, ray_address: str | None = None):
    """The main_ppo command line. ``judge_url``: the external judge's ``.../v1``; ``None`` for a recipe that runs
    without a thinking reward model (``recipe_uses_judge`` false). ``args.recipe`` (default ``sophiavl``) is the
    recipe, as ``+recipe=NAME``. ``ray_address``: join that running Ray cluster (--nodes) instead of starting one."""
    n = args.group_size
    recipe = getattr(args, "recipe", "sophiavl")
    workdir = getattr(args, "workdir", None)
    judge = judge_overrides(getattr(args, "rm", "external"), judge_url, models / "judge")
    failing = []
    if getattr(args, "failed_sessions", False):  # verl's own agent loop hook; the module is on PYTHONPATH
        failing = [
            f"actor_rollout_ref.rollout.agent.agent_loop_config_path={AGENT_LOOPS / 'failing.yaml'}",
            "actor_rollout_ref.rollout.agent.default_agent_loop=failing_single_turn",
        ]
    # Ray: logical CPUs beyond the 2 real cores (gets past a silent hang: TransferQueue actors and the workers each
    # reserve a CPU), and one fake GPU per pool (verl counts GPUs before it schedules its workers); or join the
    # --nodes cluster, whose nodes have their own CPUs and fake GPUs (examples/cpu/ray_cluster.py); no dashboard (a
    # server nobody reads; the rest of Ray stays on loopback: RAY_LOOPBACK_ENV)
    ray_init = ["ray_kwargs.ray_init.num_cpus=16",
                f"+ray_kwargs.ray_init.num_gpus={2 if getattr(args, 'rm', 'external') == 'verl' else 1}",
                "+ray_kwargs.ray_init.include_dashboard=False"]  # fmt: skip
    if ray_address:
        ray_init = ray_cluster().connect_overrides(ray_address)
    overrides = [
        f"+recipe={recipe}",
        # data: the first rows of the embedded sample (images as bytes, or text-only with --text-only)
        f"data.train_files={data_dir / 'train.parquet'}",
        f"data.val_files={data_dir / 'val.parquet'}",
        f"data.train_batch_size={args.batch}",
        "data.max_prompt_length=1024",
        f"data.max_response_length={args.response_length}",
        "data.filter_overlong_prompts=True",
        "data.dataloader_num_workers=0",  # no forked dataloader processes on 2 cores
        # policy: the tiny Qwen2.5-VL (or Qwen2), fp32, plain attention (no FlashAttention on CPU)
        f"actor_rollout_ref.model.path={models / 'policy'}",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",  # gets past: FlashAttention2 requested
        "actor_rollout_ref.model.use_remove_padding=False",  # same: remove-padding needs flash-attn
        "actor_rollout_ref.actor.strategy=fsdp2",  # gets past: "Cannot access accelerator device" (fsdp1)
        # fp32 (verl's default is bf16) for actor, reference and rollout: no error fix, the dtype the tiny models
        # are saved in, so that the trainer, vLLM and the weight sync between them all see the same fp32 weights
        "actor_rollout_ref.actor.fsdp_config.dtype=float32",
        "actor_rollout_ref.ref.fsdp_config.dtype=float32",
        # no error fix either: torch.compile of verl's entropy/log-prob functions would have inductor build C++
        # kernels with g++ at the first step, tens of seconds on 2 cores for tensors this small
        "actor_rollout_ref.actor.use_torch_compile=False",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={args.batch}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={args.batch * n}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={args.batch * n}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={args.batch * n}",
        # rollout: vLLM (CPU), one replica, small and awake
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.n={n}",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.dtype=float32",  # fp32: see the FSDP dtypes above
        "actor_rollout_ref.rollout.enforce_eager=True",  # no CUDA graphs on CPU; also skips vLLM's compile step
        # on CPU this is the share of host RAM vLLM requires free at start-up; verl's 0.5 (12 GiB of 24) gets
        # "Available memory on node 0 ... is less than desired CPU memory utilization" once the judge, Ray and the
        # FSDP workers hold memory. The KV cache itself is VLLM_CPU_KVCACHE_SPACE (base_env).
        "actor_rollout_ref.rollout.gpu_memory_utilization=0.1",
        "actor_rollout_ref.rollout.max_model_len=2048",
        "actor_rollout_ref.rollout.max_num_batched_tokens=4096",
        "actor_rollout_ref.rollout.max_num_seqs=16",
        "+actor_rollout_ref.rollout.enable_sleep_mode=False",  # gets past: "Sleep mode is not supported"
        "actor_rollout_ref.rollout.free_cache_engine=False",  # same
        "actor_rollout_ref.rollout.agent.num_workers=1",
        # reward: our manager, the judge on loopback, constrained output so a random judge still parses
        "reward.num_workers=1",
        *judge,
        # trainer: one fake GPU, no checkpoints, no validation, metrics to console and a JSON-lines file
        "trainer.nnodes=1",
        "trainer.n_gpus_per_node=1",
        "trainer.device=cpu",
        f"trainer.total_training_steps={args.steps}",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        # checkpoints (--fault-after-step) go to WORKDIR/checkpoints; the path also names the run's work folder in
        # the trainer's command line, which the e2e test's independent process scan looks for
        *([f"trainer.default_local_dir={Path(workdir).resolve() / 'checkpoints'}"] if workdir else []),
        "trainer.logger=[console,file]",
        "trainer.project_name=sophiavl_e2e",
        "trainer.experiment_name=cpu_demo",
        # TransferQueue: one storage actor instead of 8 (each is a Python process of a few hundred MB)
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        *ray_init,
        *failing,
    ]
    return [PY, "-m", "verl.trainer.main_ppo", *overrides, *args.overrides]


def ray_cluster():
    """examples/cpu/ray_cluster.py (--nodes), imported when needed: a sibling module (this folder is on sys.path when
    a demo runs, and on pytest's path in the tests)."""
    import ray_cluster as module

    return module


def base_env(run_id: str) -> dict:
    """The environment of every process of the run: preparation steps, judge server, training."""
    return dict(
        os.environ,
        **{
            MARKER: run_id,
            # vLLM picks its CPU platform from the "+cpu" version and this variable; gets past vLLM looking for CUDA
            "VLLM_TARGET_DEVICE": "cpu",
            "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache per vLLM engine
        },
    )


# Ray on loopback. Ray registers a node under the machine's network address and binds its servers (GCS, raylet, object
# manager, workers, agents) to it or to all interfaces, and the servers verl starts (its vLLM replicas' HTTP servers,
# the reward router, TransferQueue) take the node's address (ray.util.get_node_ip_address). With this variable at 0,
# Ray's node address is 127.0.0.1 (what Ray does on macOS and Windows): verl's own ray.init, the --nodes cluster
# (ray_cluster.py) and the driver that joins it all stay on loopback. ray.init(_node_ip_address="127.0.0.1") cannot do
# it: Ray replaces a loopback address there by the network address.
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def training_env(base: dict, metrics_path: Path) -> dict:
    """base_env plus what the verl processes need (Ray on loopback among them: RAY_LOOPBACK_ENV)."""
    env = dict(base)
    # cpu_support: the CPU platform and hacks; agent_loops: the failing agent loop of --failed-sessions
    paths = [str(HERE / "cpu_support"), str(AGENT_LOOPS), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env.update(
        {
            "VERL_USE_EXTERNAL_MODULES": "verl_cpu_support",  # the CPU platform and hacks, in every verl process
            "VERL_PLATFORM": "cpu",  # gets past: "No supported accelerator detected ... Falling back to 'nvidia'"
            "VERL_ENGINE_DEVICE": "cuda",  # gets past: "No engine registered for device='cpu' ... backend='fsdp'"
            "VERL_FILE_LOGGER_PATH": str(metrics_path),
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
            "RAY_DEDUP_LOGS": "0",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **RAY_LOOPBACK_ENV,
        }
    )
    return env


def read_metrics(path: Path) -> list[dict]:
    steps = []
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                steps.append({"step": record["step"], **record["data"]})
    return steps


def fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"


def print_summary(steps: list[dict], judge_requests, wall_s: float) -> None:
    header = ["step"] + [name for name, _ in SUMMARY_COLUMNS]
    rows = [[str(s["step"])] + [fmt(s.get(key)) for _, key in SUMMARY_COLUMNS] for s in steps]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("\n=== SophiaVL-R1 CPU demo: per-step summary ===")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    print(
        "outcome/thinking: mean Ro and Rt of the batch; gamma: mean trust weight; untrusted: share of groups\n"
        "down-weighted (gamma < 1); R: mean shaped reward Ro + gamma*alpha_t*Rt; judge_req/judge_fail: judge\n"
        "calls made/failed by the reward manager; failed_groups: groups with a failed rollout session; pad_rows:\n"
        "rows verl padded the batch with; step_s: seconds per step (the first includes warm-up)"
    )
    print(f"judge server: {fmt(judge_requests)} chat requests served (vllm:request_success_total)")
    print(f"wall time: {wall_s:.0f} s\n", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


# The judge's initial weight scale (build_tiny_models.py --judge-init-std, the config's initializer_range). At
# transformers' 0.02 (build_tiny_models' default; the TRM demo trains from it) a random judge answers the same score
# whatever it reads: every group's thinking scores are equal and gamma is always 1. At 0.5 its greedy or seeded answer
# depends on the question and response it reads, so scores differ within a group and the trust weight has something
# to act on. Still random weights: no score is taught to it.
JUDGE_INIT_STD = 0.5
# What the prepared assets depend on: a change to one of these files rebuilds them.
ASSET_SOURCES = ("build_tiny_models.py", "sample_rows.py")


def prepare_assets(args, assets: Path, env: dict, deadline: Deadline) -> None:
    """Steps 1 and 2: ASSETS/rows (train/val parquet) and ASSETS/models (policy, judge). Skipped when ASSETS/assets.json
    records the same options and the same source files (several runs, e.g. the e2e tests, share one build)."""
    text_flag = ["--text-only"] if args.text_only else []
    kind_flag = ["--problem-type", args.problem_type] if args.problem_type else []
    train_rows = max(16, args.batch * args.steps)  # 16: the demo, its test and the fault drill share one build
    stamp = {
        "judge_init_std": JUDGE_INIT_STD,
        "text_only": args.text_only,
        "problem_type": args.problem_type,
        "train_rows": train_rows,
        "sources": {name: (HERE / name).read_text() for name in ASSET_SOURCES},
    }
    stamp_path = assets / "assets.json"
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp:
        log(f"1-2/5 reusing the prepared rows and tiny models in {assets}")
        return
    stamp_path.unlink(missing_ok=True)
    kind = "text-only" if args.text_only else "image and text"
    log(f"1/5 preparing the embedded sample dataset (make prepare-data) and {kind} rows")
    run_step([PY, "-m", "sophiavl.data_prep.sophiavl_130k", "--out", str(assets / "sophiavl"), "--val-size", "16",
              "--no-progress"], env, deadline.cap(300))  # fmt: skip
    run_step([PY, str(HERE / "sample_rows.py"), str(assets / "sophiavl"), str(assets / "rows"), *text_flag,
              *kind_flag, "--train-rows", str(train_rows), "--val-rows", "4"], env, deadline.cap(120))  # fmt: skip
    arch = "Qwen2" if args.text_only else "Qwen2.5-VL"
    log(f"2/5 building a tiny {arch} policy (format warm-up) and thinking reward model (offline, random weights)")
    warmup = ["--warmup-rows", str(assets / "rows" / "train.parquet")]
    run_step([PY, str(HERE / "build_tiny_models.py"), str(assets / "models"), *text_flag, *warmup,
              "--judge-init-std", str(JUDGE_INIT_STD)], env, deadline.cap(300))  # fmt: skip
    stamp_path.write_text(json.dumps(stamp))


# The sampler's error when too many judge calls of a step failed (recipes/trust_sampler.py, TrustSampler._rm_health).
FAILURE_RATE_ERROR = "judge calls failed in this training step"


def run_trainer(cmd: list[str], env: dict, log_path: Path, timeout: float, expect_failure: bool = False) -> int:
    """Runs one training command in its own process group, its output into log_path; returns its exit status (124
    past ``timeout``). With ``expect_failure``, a run whose log shows the sampler's failure-rate error and that has
    not exited 120 s later is stopped (status 125): the error is what was expected, a hang after it is not."""
    proc = spawn(cmd, env, log_path, echo=not os.environ.get("DEMO_QUIET"))
    end, failed_at = time.time() + timeout, None
    try:
        while proc.poll() is None:
            now = time.time()
            if now > end:
                log(f"training did not finish within {timeout:.0f} s: stopping it")
                return 124
            if expect_failure and failed_at is None and log_path.exists():
                if FAILURE_RATE_ERROR in log_path.read_text(errors="replace"):
                    failed_at = now
            if failed_at is not None and now - failed_at > 120:
                log("training logged the failure-rate error but did not exit within 120 s: stopping it")
                return 125
            time.sleep(0.5)
        return proc.returncode
    finally:
        kill_group(proc)


def start_proxy(
    upstream: str, port: int, serve: int | None, env: dict, log_path: Path, requests_log: Path | None = None
) -> subprocess.Popen:
    """examples/cpu/judge_proxy.py on 127.0.0.1:port in front of ``upstream``; ``serve``: chat requests it answers
    before it goes down (None: all); ``requests_log``: its JSON-lines record of the chat requests."""
    cmd = [PY, str(HERE / "judge_proxy.py"), "--upstream", upstream, "--port", str(port)]
    if requests_log is not None:
        cmd += ["--log", str(requests_log)]
    if serve is not None:
        cmd += ["--serve", str(serve)]
    return spawn(cmd, env, log_path)


def checkpoint_state(ckpt_dir: Path) -> dict:
    """The global_step_* folders under ckpt_dir and verl's latest_checkpointed_iteration.txt (None if absent)."""
    latest = ckpt_dir / "latest_checkpointed_iteration.txt"
    steps = sorted(int(p.name.rsplit("_", 1)[1]) for p in ckpt_dir.glob("global_step_*")) if ckpt_dir.exists() else []
    return {"global_steps": steps, "latest": int(latest.read_text().strip()) if latest.exists() else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="SophiaVL-R1 on CPU: one tiny end-to-end training run")
    parser.add_argument("--workdir", type=Path, default=REPO / "data" / "e2e")
    parser.add_argument(
        "--assets", type=Path, help="where the rows and tiny models are built, or reused when built alike (WORKDIR)"
    )
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4, help="prompts per step (groups per step)")
    parser.add_argument("--group-size", type=int, default=8, help="responses per prompt (rollout.n)")
    parser.add_argument(
        "--problem-type", default="multiple choice", help="rows of this problem type only ('' for the first rows)"
    )
    parser.add_argument("--response-length", type=int, default=48)
    parser.add_argument("--timeout", type=float, default=1500, help="seconds for the training run")
    parser.add_argument(
        "--deadline", type=float, help="seconds for all stages together (each stage keeps its own limit too)"
    )
    parser.add_argument("--text-only", action="store_true", help="text-only Qwen2 models and rows without images")
    parser.add_argument(
        "--rm", choices=("external", "verl"), default="external",
        help="external: the demo serves the judge (vLLM on loopback); verl: verl serves it on its own pool",
    )  # fmt: skip
    parser.add_argument(
        "--recipe", default="sophiavl", help="the recipe, as +recipe=NAME (one without a thinking RM starts no judge)"
    )
    parser.add_argument(
        "--fault-after-step", type=int, metavar="K",
        help="fault drill: checkpoints every step, the judge goes down after step K, the run must stop; the judge "
             "comes back and the same command with trainer.resume_mode=auto must finish steps K+1..--steps",
    )  # fmt: skip
    parser.add_argument(
        "--failed-sessions", action="store_true",
        help="rollout sessions fail on purpose (examples/cpu/agent_loops): some groups lose every session, the others "
             "session 0; verl pads the batch (trust/pad_rows) and the run must train through every step",
    )  # fmt: skip
    parser.add_argument(
        "--nodes", type=int, choices=(1, 2), default=1,
        help="2: a two-node Ray cluster on this machine (examples/cpu/ray_cluster.py), one fake GPU per node: the "
             "trainer's pool on one node, the TRM's on the other (needs --rm verl)",
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for main_ppo (they win)")
    args = parser.parse_args(argv)
    fault_k = args.fault_after_step
    if fault_k is not None and not (1 <= fault_k < args.steps and args.rm == "external"):
        parser.error("--fault-after-step K needs 1 <= K < --steps and --rm external")
    if args.nodes > 1 and args.rm != "verl":
        parser.error("--nodes 2 needs --rm verl (the trainer's pool on one node, the TRM's on the other)")

    stale = ("metrics.jsonl", "train.log", "judge.log", "summary.json", "proxy.log")
    start, run_id, work = new_run(args.workdir, stale)
    assets = (args.assets or args.workdir).resolve()
    assets.mkdir(parents=True, exist_ok=True)
    for old in [*work.glob("metrics.run*.jsonl"), *work.glob("train.run*.log"), *work.glob("judge_requests.*")]:
        old.unlink()
    deadline = Deadline(args.deadline)
    step_env = base_env(run_id)
    # one marker value per training run (its Ray and vLLM processes inherit it), so that each run's leftovers can
    # be found and stopped on their own; the judge and the preparation steps carry run_id
    runs = [("", f"{run_id}-1")] if fault_k is None else [("run1", f"{run_id}-1"), ("run2", f"{run_id}-2")]
    ckpt_dir = work / "checkpoints"
    # a fresh start: verl's resume_mode defaults to auto and would resume from an earlier drill's checkpoints here
    shutil.rmtree(ckpt_dir, ignore_errors=True)

    # Ctrl-C and `kill` (SIGTERM, e.g. from `timeout`) both end in the `finally` below.
    signal.signal(signal.SIGTERM, _interrupt)
    judge = proxy = port = proxy_port = base = cluster = ray_nodes = None
    rc, judge_requests, left, exits, fault = 1, None, [], [], {}
    try:
        prepare_assets(args, assets, step_env, deadline)
        models, rows = assets / "models", assets / "rows"

        judge_url = None
        if args.rm == "verl":
            log("3/5 the thinking RM is served by verl (reward.reward_model, own resource pool, reward router)")
        elif recipe_uses_judge(args.recipe, args.overrides):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            log(f"3/5 starting the thinking RM: vLLM (CPU) OpenAI server on {base} (log: {work / 'judge.log'})")
            judge = start_judge(models / "judge", port, step_env, work / "judge.log")
            wait_ready(judge, f"{base}/v1/models", deadline.cap(600), work / "judge.log")
            log("judge server ready")
            judge_url = f"{base}/v1"
        else:
            log(f"3/5 no thinking RM: recipe {args.recipe} runs with reward.thinking_rm.enable=false")

        if args.nodes > 1:  # the cluster's processes carry the training run's marker and environment
            log(f"3b/5 starting a {args.nodes}-node Ray cluster on this machine (log: {work / 'ray_cluster.log'})")
            env = training_env(base_env(runs[0][1]), work / "metrics.jsonl")
            cluster = ray_cluster().start(args.nodes, env, work, deadline.cap(180), run_id)
        cmd = training_command(args, rows, models, judge_url, cluster and cluster.address)
        if fault_k is not None:
            # the judge is reached through a proxy that goes down after the judge calls of K steps
            proxy_port = free_port()
            proxy_base = f"http://127.0.0.1:{proxy_port}"
            cmd = training_command(args, rows, models, f"{proxy_base}/v1")
            cmd += ["trainer.save_freq=1", "reward.thinking_rm.backoff_s=0.2", "reward.thinking_rm.backoff_max_s=1"]
            serve = fault_k * args.batch * args.group_size
            proxy = start_proxy(
                base, proxy_port, serve, step_env, work / "proxy.log", work / "judge_requests.run1.jsonl"
            )
            wait_ready(proxy, f"{proxy_base}/v1/models", deadline.cap(60), work / "proxy.log")
            log(f"fault drill: the judge at {proxy_base}/v1 goes down after {serve} calls (step {fault_k})")
        (work / "command.txt").write_text(" ".join(cmd) + "\n")

        for name, marker in runs:
            env = training_env(base_env(marker), work / (f"metrics.{name}.jsonl" if name else "metrics.jsonl"))
            log_path = work / (f"train.{name}.log" if name else "train.log")
            run_cmd = cmd
            if name == "run1":
                run_cmd = [*cmd, "trainer.resume_mode=disable"]
            elif name == "run2":
                run_cmd = [*cmd, "trainer.resume_mode=auto"]
                fault["checkpoints_before_resume"] = checkpoint_state(ckpt_dir)
                log("the judge is back (proxy without limit); resuming with trainer.resume_mode=auto")
                proxy = start_proxy(
                    base, proxy_port, None, step_env, work / "proxy.log", work / "judge_requests.run2.jsonl"
                )
                wait_ready(proxy, f"http://127.0.0.1:{proxy_port}/v1/models", deadline.cap(60), work / "proxy.log")
            timeout = deadline.cap(args.timeout)
            log(f"4/5 training {name}: {' '.join(run_cmd[1:4])} ... (log: {log_path}, timeout {timeout:.0f} s)")
            status = run_trainer(run_cmd, env, log_path, timeout, expect_failure=name == "run1")
            exits.append(status)
            ray_nodes = cluster and cluster.stop()  # Ray's record of where each pool ran, then the shutdown
            left += kill_marked(marker)  # this run's Ray and vLLM processes, before the next run starts its own
            if name == "run1":
                fault["proxy_exit"] = proxy.poll()  # 3: it went down at the first judge call of step K + 1
                fault["failure_rate_error"] = FAILURE_RATE_ERROR in log_path.read_text(errors="replace")
            elif status != 0 and log_path.exists():
                tail = log_path.read_text(errors="replace").splitlines()[-60:]
                log(f"training exited {status}; last lines of {log_path}:\n" + "\n".join(tail))
        if fault_k is None:
            rc = exits[0]
        else:
            expected = exits[0] not in (0, 124) and fault.get("failure_rate_error") and fault.get("proxy_exit") == 3
            rc = exits[1] if expected else 1
            if not expected:
                log(f"fault drill: the first run did not stop on the judge outage as expected: {fault}, exits {exits}")
        if judge is not None and judge.poll() is None:
            judge_requests = judge_request_count(base)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        rc = 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the stopping short
        ray_nodes = cluster and cluster.stop()
        left = stop_all((proxy, judge), [run_id, *(m for _, m in runs)], left)

    steps = []
    for name, _ in runs:
        for step in read_metrics(work / (f"metrics.{name}.jsonl" if name else "metrics.jsonl")):
            steps.append({**step, "run": name} if name else step)
    if fault_k is not None:
        (work / "metrics.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    print_summary(steps, judge_requests, time.time() - start)
    if ray_nodes:
        print(ray_cluster().layout_text(ray_nodes), flush=True)
    if fault_k is not None and len(exits) == 2:
        before = fault.get("checkpoints_before_resume", {})
        print(f"fault drill: run 1 logged steps {[s['step'] for s in steps if s['run'] == 'run1']} and stopped "
              f"(exit {exits[0]}, judge failure-rate error: {fault.get('failure_rate_error')}) with checkpoints "
              f"{before.get('global_steps')}; run 2 (trainer.resume_mode=auto) logged steps "
              f"{[s['step'] for s in steps if s['run'] == 'run2']} (exit {exits[1]})\n", flush=True)  # fmt: skip
    summary = {
        "exit_status": rc,
        "run_id": run_id,
        "run_ids": [run_id, *(m for _, m in runs)],
        "marker": MARKER,
        "steps": steps,
        "judge_requests": judge_requests,
        "judge_port": port,
        "proxy_port": proxy_port,
        "training_exits": exits,
        "fault": fault or None,
        "checkpoints": checkpoint_state(ckpt_dir) if fault_k is not None else None,
        "leftover_pids_killed": left,
        "ray_nodes": ray_nodes,
        "wall_s": time.time() - start,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    if rc == 0 and len(steps) < args.steps:
        log(f"training exited 0 but logged {len(steps)} of {args.steps} steps")
        rc = 1
    log(f"done: exit status {rc}; summary in {work / 'summary.json'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
