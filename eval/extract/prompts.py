"""The prompts of model-based answer extraction, one per kind of question, and how their replies are read.

They follow the structure of VLMEvalKit's judge prompts (the harness of the paper's numbers): a task description,
worked examples, then the case, and a reply of one letter, one word, one number or the bare answer. The wording is
our own; for the exact prompts run VLMEvalKit itself (docs/evaluation.md).

* :func:`choice_prompt`: which option does the answer choose (VLMEvalKit ``build_prompt`` in
  ``vlmeval/dataset/utils/multiple_choice.py``); reply: a letter, or ``Z`` for none. Also MMMU's open questions,
  as two options (the gold answer, "Other Answers"), as VLMEvalKit's ``MMMU_preproc`` does.
* :func:`yes_no_prompt`: Yes, No or Unknown (``YOrN_match_prompt`` in ``vlmeval/dataset/utils/yorn.py``).
* :func:`mathvista_prompt`: extract the final answer (``build_mathvista_gpt4_prompt`` in
  ``vlmeval/dataset/utils/mathvista.py``); the reply is then scored by the MathVista rule.
* :func:`judge_prompt`: are the model's answer and the standard answer the same (``build_mathverse_gpt4_score_prompt``
  in ``vlmeval/dataset/utils/mathverse.py``); reply: 1 or 0.
"""

from __future__ import annotations

from collections.abc import Mapping

CHOICE_EXAMPLES = (
    ("What animal is in the picture?", {"A": "a horse", "B": "a cow", "C": "a sheep", "D": "a goat"},
     "It looks like a cow standing in a field.", "B"),
    ("What animal is in the picture?", {"A": "a horse", "B": "a cow", "C": "a sheep", "D": "a goat"},
     "An elephant.", "Z"),
)  # fmt: skip

YES_NO_EXAMPLES = (
    ("Is there a red car in the image?", "I can see a red car parked on the left.", "Yes"),
    ("Is there a red car in the image?", "The only car in the image is blue.", "No"),
)

MATHVISTA_EXAMPLES = (
    ("Hint: Answer with an integer.\nQuestion: How many birds are on the wire?", "I count 7 birds on the wire.", "7"),
    (
        "Hint: Answer with a number with two decimal places.\nQuestion: What is the total price? (Unit: $)",
        "Adding the two items gives $3.25 in total.",
        "3.25",
    ),
    (
        "Hint: Answer with the option letter.\nQuestion: Which shape is shaded?\nChoices: (A) circle (B) square "
        "(C) triangle",
        "The shaded shape has three sides, so it is (C) triangle.",
        "C",
    ),
    (
        "Hint: Answer with a Python list.\nQuestion: In which two years were sales equal?",
        "Sales were equal in 2010 and in 2014.",
        "[2010, 2014]",
    ),
)

JUDGE_EXAMPLES = (
    ("Find x.", "5", "x = 5", "1"),
    ("Find the length of AB.", "\\frac{1}{2}", "0.5", "1"),
    ("Find the area of the circle.", "4\\pi", "12.0", "0"),
    ("Which option is right?\nChoices:\nA:30\nB:60\nC:90\nD:120", "C", "B:60", "0"),
)


def _options_block(options: Mapping[str, str]) -> str:
    return " ".join(f"{k}. {v}" if v else k for k, v in options.items())


def choice_prompt(question: str, options: Mapping[str, str], answer: str) -> str:
    """Asks which of ``options`` (letter -> text; ``""`` where only the letter is known) ``answer`` chooses; the
    reply should be one letter, or ``Z`` when it chooses none."""
    letters = ", ".join(options)
    head = (
        "You match an answer to the options of a single-choice question. Given the question, its options and an "
        "answer, say which option the answer chooses or is closest to in meaning. If it matches none of them, say Z. "
        f"Reply with a single capital letter: one of {letters}, or Z.\n"
    )
    examples = "".join(
        f"Example {i}:\nQuestion: {q}\nOptions: {_options_block(o)}\nAnswer: {a}\nYour reply: {r}\n"
        for i, (q, o, a, r) in enumerate(CHOICE_EXAMPLES, 1)
    )
    case = f"Now:\nQuestion: {question}\nOptions: {_options_block(options)}\nAnswer: {answer}\nYour reply:"
    return head + examples + case


def yes_no_prompt(question: str, answer: str) -> str:
    """Asks whether ``answer`` to the yes/no ``question`` means Yes or No; reply Yes, No or Unknown."""
    head = (
        "You read the answer to a yes/no question. Say whether the answer means Yes or No. If it means neither, "
        "say Unknown. Reply with one word: Yes, No or Unknown.\n"
    )
    examples = "".join(
        f"Example {i}:\nQuestion: {q}\nAnswer: {a}\nYour reply: {r}\n" for i, (q, a, r) in enumerate(YES_NO_EXAMPLES, 1)
    )
    return head + examples + f"Now:\nQuestion: {question}\nAnswer: {answer}\nYour reply:"


def mathvista_prompt(question: str, answer: str) -> str:
    """Asks for the final answer stated in ``answer`` to ``question`` (MathVista's query, with its hint on the
    answer's form), in that form and nothing else."""
    head = (
        "Read the examples, then extract the final answer from the model's response, in the form the hint asks "
        "for, and write only that answer.\n\n"
    )
    examples = "".join(f"{q}\nModel response: {a}\nExtracted answer: {r}\n\n" for q, a, r in MATHVISTA_EXAMPLES)
    return head + examples + f"{question}\nModel response: {answer}\nExtracted answer:"


def judge_prompt(question: str, gold: str, answer: str) -> str:
    """Asks whether ``answer`` and the standard answer ``gold`` of the math ``question`` agree; reply 1 or 0."""
    head = (
        "Below are a math question, its standard answer and a model's answer. Decide whether the model's answer "
        "agrees with the standard answer. For a multiple-choice question it agrees only when it names the same "
        "option; otherwise it agrees when it states the same value or expression, in any equivalent form (for "
        "example 0.5 m and 50 cm). Reply 1 if they agree and 0 if not.\n\n"
    )
    examples = "".join(
        f"Question: {q}\nStandard answer: {g}\nModel answer: {a}\nJudgement: {r}\n\n" for q, g, a, r in JUDGE_EXAMPLES
    )
    return head + examples + f"Question: {question}\nStandard answer: {gold}\nModel answer: {answer}\nJudgement:"


def read_judgement(reply: str) -> bool | None:
    """``True`` for a reply ``1``, ``False`` for ``0`` (a leading ``Judgement:`` and surrounding white space and
    end punctuation ignored); ``None`` for anything else."""
    text = reply.strip()
    if text.lower().startswith("judgement:"):
        text = text[len("judgement:") :]
    text = text.strip().strip(".")
    return {"1": True, "0": False}.get(text)
