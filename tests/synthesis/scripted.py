"""A scripted OpenAI-compatible "LLM" for the synthesis tests: answers that the pipelines can
parse, in real languages (so language ID has something to identify), keyed on the prompt
templates of ``eurollm_jax.synthesis.pipelines``; tags in the seeds ask for the malformed
answers the jobs must count: ``[wrong-language]``, ``[empty]``, ``[low]``, ``[garbled]``,
``[nomarker]``, ``[short]`` (and ``[brief]``: a short but valid context). A random tiny
model only writes gibberish, so content comes from here and the real server on the tiny model
covers the transport."""

import re

ANSWERS = {
    "en": ("This is a clear and helpful explanation. The topic is important for many people, "
           "and it is described here step by step with simple words and useful examples that "
           "everyone can understand and remember."),
    "de": ("Das ist eine klare und hilfreiche Erklärung. Das Thema ist für viele Menschen "
           "wichtig, und es wird hier Schritt für Schritt mit einfachen Worten und nützlichen "
           "Beispielen beschrieben, die jeder verstehen kann."),
    "fr": ("Voici une explication claire et utile. Le sujet est important pour beaucoup de "
           "gens, et il est décrit ici étape par étape avec des mots simples et des exemples "
           "utiles que tout le monde peut comprendre."),
    "es": ("Esta es una explicación clara y útil. El tema es importante para muchas personas, "
           "y aquí se describe paso a paso con palabras sencillas y ejemplos útiles que todo "
           "el mundo puede entender y recordar."),
}
PROMPTS = {
    "de": "Bitte erkläre mir ausführlich und verständlich das folgende Thema: {topic}",
    "fr": "Explique-moi en détail et de façon claire le sujet suivant, s'il te plaît : {topic}",
    "es": "Por favor, explícame con detalle y de forma clara el siguiente tema: {topic}",
}
NAMES = {"English": "en", "German": "de", "French": "fr", "Spanish": "es"}
INSTRUCTION = ("Please explain in detail what this text tells us about {topic} and why it "
               "matters for the people who live there.")


def _topic(text):
    words = re.findall(r"[A-Za-zÀ-ÿ]+", text)
    return " ".join(words[-3:]) if words else "life"


def respond(mode, payload, body):
    """The scripted answer to one request (see the module docstring)."""
    msgs = payload if mode == "chat" else [{"role": "user", "content": payload}]
    system = next((m["content"] for m in msgs if m["role"] == "system"), "")
    user = msgs[-1]["content"]
    if system.startswith("You are a helpful assistant. Reply in"):  # EuroBlocks answer
        lang = NAMES[system.rsplit(" ", 1)[1].rstrip(".")]
        if "[empty]" in user:
            return "   "
        if "[wrong-language]" in user:
            lang = "en" if lang != "en" else "de"
        return ANSWERS[lang] + f" Topic: {_topic(user)}."
    if user.startswith("Translate the following text"):
        target = NAMES[re.search(r" into (\w+)\.", user).group(1)]
        text = user.split("Text:\n", 1)[1]
        if text.startswith(tuple(ANSWERS.values())):
            return ANSWERS[target] + f" Topic: {_topic(text)}."
        return PROMPTS[target].format(topic=_topic(text))
    if user.startswith("You are judging"):
        if "[garbled]" in user:
            return "I cannot decide on a number for this one."
        if "[low]" in user:
            return "The answer misses the point.\nScore: 3"
        variant = re.search(r"Variante (\d)", user)
        return f"Good answer.\nScore: {6 + int(variant.group(1)) if variant else 8}"
    if user.startswith("Here is a document written in"):  # XL-Instruct back-translation
        doc = user.split("<<<", 1)[1].split(">>>", 1)[0]
        if "[nomarker]" in doc:
            return "Sure, here is an instruction you could use for this."
        return "Instruction: " + INSTRUCTION.format(topic=_topic(doc.split(".")[0]))
    if user.startswith("Use the following document"):
        lang = NAMES[re.search(r"written in (\w+)", user).group(1)]
        if "[wrong-language]" in user:
            lang = "en"
        return ANSWERS[lang] + f" Variante {body.get('seed', 0)}."
    if user.startswith("A user asked (in English)"):
        draft = user.split("<<<", 1)[1].split(">>>", 1)[0].strip()
        return "Refined response: " + draft
    if user.startswith("Here is a question and its answer"):
        question = re.search(r"Question: (.*)", user).group(1)
        answer = re.search(r"Answer: (.*)", user).group(1)
        if "[nomarker]" in question:
            return "I would rather not write that."
        if "[short]" in question:
            return "Context: Too short."
        filler = " ".join(f"Sentence {i} of the background about {_topic(question)} follows "
                          f"here with more detail." for i in range(1 if "[brief]" in question
                                                                   else 8))
        return f"Context: {filler} The fact that matters is this: {answer}."
    raise ValueError(f"the scripted LLM has no answer for: {user[:80]!r}")
