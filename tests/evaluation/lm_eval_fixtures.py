"""Tiny local files in the published formats of each lm-eval family (rows of the HF dataset
each built-in task normally downloads), written by the tests."""

import os

from eurollm_jax.fileio import write_jsonl

W = ["the cat", "the dog", "a fox", "the mat", "blue", "four", "free", "the door"]


def _arc(i):
    return {"id": f"q{i}", "instruction": f"What sat on {W[i % 8]}?",
            "option_a": W[(i + 1) % 8], "option_b": W[(i + 2) % 8], "option_c": W[(i + 3) % 8],
            "option_d": W[(i + 4) % 8], "option_e": None if i % 2 else W[(i + 5) % 8],
            "answer": "ABCD"[i % 4]}


def _hellaswag(i):
    return {"activity_label": "Cooking", "ctx_a": f"The cat sat on {W[i % 8]}.",
            "ctx_b": "then it", "endings": [W[(i + k) % 8] for k in range(4)],
            "label": str(i % 4)}


def _mmlu(i):
    return {"instruction": f"Which one is {W[i % 8]}?", "option_a": W[(i + 1) % 8],
            "option_b": W[(i + 2) % 8], "option_c": W[(i + 3) % 8], "option_d": W[(i + 4) % 8],
            "answer": "ABCD"[i % 4]}


def _truthfulqa(i):
    return {"question": f"Is the sky {W[i % 8]}?",
            "mc1_targets_choices": [W[i % 8], W[(i + 1) % 8], W[(i + 2) % 8]],
            "mc1_targets_labels": [1, 0, 0],
            "mc2_targets_choices": [W[i % 8], W[(i + 3) % 8], W[(i + 1) % 8]],
            "mc2_targets_labels": [1, 1, 0]}


def _gsm8k(i):
    return {"question": f"What is {i} plus {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}


def _belebele(i):
    return {"flores_passage": f"The cat sat on {W[i % 8]}.", "question": "Where did it sit?",
            "mc_answer1": W[i % 8], "mc_answer2": W[(i + 1) % 8], "mc_answer3": W[(i + 2) % 8],
            "mc_answer4": W[(i + 3) % 8], "correct_answer_num": str(1 + i % 4)}


def _xnli(i):
    return {"premise": f"Der Hund schläft auf {W[i % 8]}", "hypothesis": "Der Hund ist müde",
            "label": i % 3}


def _xcopa(i):
    return {"premise": f"Il gatto dorme su {W[i % 8]}.", "choice1": "Era stanco.",
            "choice2": "Era felice.", "question": "cause" if i % 2 else "effect",
            "label": i % 2}


def _xstorycloze(i):
    return {"story_id": str(i), "input_sentence_1": "El perro corre.",
            "input_sentence_2": f"Ve {W[i % 8]}.", "input_sentence_3": "Se para.",
            "input_sentence_4": "Mira.", "sentence_quiz1": "Se sienta.",
            "sentence_quiz2": "Vuela.", "answer_right_ending": 1 + i % 2}


def _mgsm(i, train):
    return {"question": f"Was ist {i} plus {i}?",
            "answer": f"Schritt für Schritt: {2 * i}" if train else None,
            "answer_number": 2 * i, "equation_solution": f"{i}+{i}={2 * i}"}


ROWS = {
    "arc": ("de", {"test": _arc, "train": _arc}),
    "hellaswag": ("de", {"val": _hellaswag}),
    "mmlu": ("de", {"test": _mmlu, "train": _mmlu}),
    "truthfulqa": ("de", {"val": _truthfulqa}),
    "truthfulqa_mc1": ("de", {"val": _truthfulqa}),
    "gsm8k": ("de", {"test": _gsm8k, "train": _gsm8k}),
    "belebele": ("de", {"test": _belebele}),
    "xnli": ("de", {"validation": _xnli}),
    "xcopa": ("it", {"test": _xcopa}),
    "xstorycloze": ("es", {"eval": _xstorycloze}),
    "mgsm": ("de", {"test": lambda i: _mgsm(i, False), "train": lambda i: _mgsm(i, True)}),
}


def write_family(data_dir, family, n=4, lang=None):
    """Writes DATA_DIR/<family>/<lang>/<split>.jsonl; returns the language."""
    default_lang, splits = ROWS[family]
    lang = lang or default_lang
    for split, make in splits.items():
        write_jsonl(os.path.join(data_dir, family, lang, f"{split}.jsonl"),
                    [make(i) for i in range(n)])
    return lang
