"""The paper's reported numbers (arXiv 2505.17018 v2, Tables 1-2), for the report's comparison columns.

MMMU is the validation split (the authors confirm it; the table header says dev_val); MME is perception + cognition
(max 2800); the others are accuracies in %.
"""

from __future__ import annotations

SOPHIAVL = "SophiaVL-R1-7B"
QWEN = "Qwen2.5-VL-7B-Instruct"

#: model -> benchmark -> headline number
HEADLINE: dict[str, dict[str, float]] = {
    SOPHIAVL: {
        "mathvista": 71.3,
        "mathverse": 48.8,
        "mmmu": 61.3,
        "mme": 2403.8,
        "chartqa": 88.5,
        "mmbench": 85.4,
        "mmstar": 66.7,
    },
    QWEN: {
        "mathvista": 67.5,
        "mathverse": 44.0,
        "mmmu": 58.7,
        "mme": 2306.0,
        "chartqa": 86.3,
        "mmbench": 83.3,
        "mmstar": 64.3,
    },
}

#: model -> benchmark -> sub-score name (as the report names it) -> number. Table 1's MathVista columns: SCI, ARI and
#: LOG are skills (``metadata.skills``), TQA and MWP tasks (``metadata.task``).
SUB_SCORES: dict[str, dict[str, dict[str, float]]] = {
    SOPHIAVL: {
        "mathvista": {
            "skill/scientific reasoning": 70.5,
            "task/textbook question answering": 73.4,
            "skill/arithmetic reasoning": 62.6,
            "task/math word problem": 76.9,
            "skill/logical reasoning": 35.1,
        },
        "mathverse": {
            "version/Vision Intensive": 45.4,
            "version/Vision Only": 43.9,
            "version/Vision Dominant": 45.1,
            "version/Text Dominant": 58.5,
            "version/Text Lite": 51.3,
        },
    },
    QWEN: {
        "mathvista": {
            "skill/scientific reasoning": 65.6,
            "task/textbook question answering": 67.7,
            "skill/arithmetic reasoning": 57.5,
            "task/math word problem": 69.4,
            "skill/logical reasoning": 27.0,
        },
        "mathverse": {
            "version/Vision Intensive": 41.1,
            "version/Vision Only": 41.0,
            "version/Vision Dominant": 38.7,
            "version/Text Dominant": 55.2,
            "version/Text Lite": 44.0,
        },
    },
}
