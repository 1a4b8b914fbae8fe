"""Model-based answer extraction for the rows the rules cannot decide (``--extract-url``, the paper's protocol).

Rules first: a row whose verdict the rules reached (``decided_by == "rule"``) keeps it. Each answered row the rules
left undecided (``decided_by == "none"``: no option, number or yes/no found; a free-form answer they cannot match)
goes to the model with its benchmark's prompt (:mod:`sophiavl.eval.extract.prompts`):

=========================== ============================================ ==============================================
rows                        prompt                                       the reply decides
=========================== ============================================ ==============================================
MMBench, MMStar, MMMU (MC)  which option does the answer choose          its letter (:func:`vlmeval_choice`; ``Z``:
                                                                         none, wrong) against the gold letter
MMMU (open)                 the same, options A = the gold, B = "Other   A: right
                            Answers" (VLMEvalKit's ``MMMU_preproc``)
MathVista                   extract the final answer                     the MathVista rule on the extracted answer
MathVerse                   does the answer agree with the standard one  1: right, 0: wrong
MME                         Yes, No or Unknown                           Yes/No against the gold; Unknown: wrong
ChartQA                     (never asked: VLMEvalKit scores it by rule)
=========================== ============================================ ==============================================

A reply that cannot be read is asked again (``parse_retries`` times, at temperature 0.5, 1.0 ...; the first ask is
greedy), as VLMEvalKit does. A row whose requests fail or whose replies stay unreadable is **counted as failed**
(``decided_by`` stays ``none``, wrong), never guessed. Requests run concurrently (the client bounds them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sophiavl.eval.benchmarks import ScoredRow, get
from sophiavl.eval.benchmarks.mme import yes_no
from sophiavl.eval.choices import LETTERS
from sophiavl.eval.extract.client import ExtractClient
from sophiavl.eval.extract.prompts import choice_prompt, judge_prompt, mathvista_prompt, read_judgement, yes_no_prompt
from sophiavl.eval.option_rules import vlmeval_choice

#: benchmarks whose undecided rows a model may decide (ChartQA: VLMEvalKit's rule alone)
MODEL_BENCHMARKS = ("mathvista", "mathverse", "mmmu", "mme", "mmbench", "mmstar")
OTHER_ANSWERS = "Other Answers"


@dataclass(frozen=True)
class Case:
    """One undecided row: its ``answer`` (the text extracted from the response), ``ground_truth`` and prepared
    ``extra_info``."""

    benchmark: str
    answer: str
    ground_truth: str
    extra: Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """The model's decision on one case: ``correct`` (``None`` when it failed), ``answer`` what the reply said (a
    letter, Yes/No, the extracted answer, 1/0), ``reply`` the last reply text, ``error`` why it failed."""

    correct: bool | None
    answer: str | None
    reply: str | None
    error: str = ""


def _options(extra: Mapping[str, Any]) -> dict[str, str]:
    texts = list(extra.get("options") or [])
    return {LETTERS[i]: (str(texts[i]) if i < len(texts) else "") for i in range(int(extra.get("n_options") or 0))}


def prompt_and_reader(case: Case) -> tuple[str, Any]:
    """The prompt for ``case`` and a function reading a reply into ``(correct, answer)``, or ``None`` when the reply
    cannot be read. ``ValueError`` for a benchmark no model decides (ChartQA)."""
    extra, gold = case.extra, case.ground_truth
    question = str(extra.get("judge_question") or extra.get("question") or "")
    if case.benchmark == "mathvista":

        def read_mathvista(reply: str):
            text = reply.strip()
            if not text:
                return None
            verdict = get("mathvista").verdict(text, gold, extra)
            return verdict.correct, verdict.answer or text

        return mathvista_prompt(question, case.answer), read_mathvista
    if case.benchmark == "mathverse":

        def read_judge(reply: str):
            said = read_judgement(reply)
            return None if said is None else (said, "1" if said else "0")

        return judge_prompt(question, gold, case.answer), read_judge
    if case.benchmark == "mme":

        def read_yes_no(reply: str):
            said = yes_no(reply)
            if said is None:
                return (False, "unknown") if "unknown" in reply.lower() else None
            return said == gold.strip().lower(), said

        return yes_no_prompt(question, case.answer), read_yes_no
    if case.benchmark in ("mmbench", "mmstar", "mmmu"):
        if extra.get("problem_type") == "multiple choice":
            options, accepted = _options(extra), [gold]
        else:  # MMMU open question: the gold against everything else
            options, accepted = {"A": gold, "B": OTHER_ANSWERS}, ["A"]

        def read_choice(reply: str):
            letter = vlmeval_choice(reply, options)  # a lone "Z" reads as NO_OPTION: decided, wrong
            return None if letter is None else (letter in accepted, letter)

        return choice_prompt(question, options, case.answer), read_choice
    raise ValueError(f"no model decides {case.benchmark} rows (its rule alone is the official metric)")


async def decide(client: ExtractClient, case: Case, parse_retries: int = 2) -> Decision:
    """The model's decision on ``case``: ask, read; an unreadable reply is asked again up to ``parse_retries``
    times (temperature 0.5 * k); a failed request ends it (the client already retried)."""
    prompt, read = prompt_and_reader(case)
    reply_text = None
    for k in range(parse_retries + 1):
        reply = await client.complete(prompt, temperature=0.5 * k)
        if reply.text is None:
            return Decision(None, None, reply_text, reply.error)
        reply_text = reply.text
        got = read(reply.text)
        if got is not None:
            return Decision(bool(got[0]), got[1], reply.text)
    return Decision(None, None, reply_text, f"no readable decision in {parse_retries + 1} replies")


async def decide_all(client: ExtractClient, cases: list[Case], parse_retries: int = 2) -> list[Decision]:
    """:func:`decide` for every case, concurrently, in order."""
    await client.resolve_model()
    return list(await asyncio.gather(*(decide(client, c, parse_retries) for c in cases)))


def needs_model(row: ScoredRow) -> bool:
    """Whether ``row`` goes to the model: answered, undecided by the rules, of a benchmark a model may decide."""
    return not row.missing and row.decided_by == "none" and row.benchmark in MODEL_BENCHMARKS


def apply_decisions(rows: list[ScoredRow], decisions: Mapping[tuple[str, str], Decision]) -> list[ScoredRow]:
    """``rows`` with the model's decisions applied: a decided row gets ``correct`` from the model, ``decided_by``
    ``model`` and its rules-only verdict in ``rule_correct``; a failed one stays wrong and ``none``; both record
    the reply (and the error) in their audit."""
    out = []
    for r in rows:
        d = decisions.get((r.benchmark, r.id))
        if d is None:
            out.append(r)
            continue
        audit = dict(r.audit or {}) | {"model_answer": d.answer, "model_reply": d.reply, "model_error": d.error}
        if d.correct is None:
            out.append(replace(r, rule_correct=r.correct, audit=audit))
        else:
            out.append(replace(r, correct=float(d.correct), rule_correct=r.correct, decided_by="model", audit=audit))
    return out


def extract_with_model(
    rows: list[ScoredRow], cases: Mapping[tuple[str, str], Case], client: ExtractClient, parse_retries: int = 2
) -> tuple[list[ScoredRow], str]:
    """Runs the model on every row :func:`needs_model` selects (its :class:`Case` from ``cases``) and returns the
    rows with the decisions applied, and the model's name. Blocking (its own event loop)."""
    keys = [(r.benchmark, r.id) for r in rows if needs_model(r)]

    async def run() -> tuple[list[Decision], str]:
        async with client:
            model = await client.resolve_model()
            return await decide_all(client, [cases[k] for k in keys], parse_retries), model

    decisions, model = asyncio.run(run())
    return apply_decisions(rows, dict(zip(keys, decisions, strict=True))), model


def add_extract_args(parser: Any) -> None:
    """The ``--extract-*`` options shared by ``sophiavl.eval.score`` and ``sophiavl.eval.report``."""
    g = parser.add_argument_group("model-based extraction (rows the rules cannot decide; the paper's protocol)")
    g.add_argument("--extract-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (default: rules)")
    g.add_argument("--extract-model", help="model name to request (default: the server's first /v1/models entry)")
    g.add_argument("--extract-api-key-env", default="OPENAI_API_KEY", help="environment variable with the API key")
    g.add_argument("--extract-concurrency", type=int, default=16, help="requests in flight at most")
    g.add_argument("--extract-timeout", type=float, default=60.0, help="seconds per HTTP attempt")
    g.add_argument("--extract-retries", type=int, default=3, help="retries of a failed request (5xx, 429, timeout)")
    g.add_argument("--extract-parse-retries", type=int, default=2, help="asks again after an unreadable reply")


def client_from_args(args: Any) -> ExtractClient | None:
    """The client the ``--extract-*`` options describe, or ``None`` without ``--extract-url``."""
    if not args.extract_url:
        return None
    return ExtractClient(
        args.extract_url,
        args.extract_model,
        api_key_env=args.extract_api_key_env,
        max_concurrency=args.extract_concurrency,
        timeout_s=args.extract_timeout,
        max_retries=args.extract_retries,
    )
