"""Language codes shared by every stage (no heavy imports: data and filter workers use it).

EuroLLM covers the 24 official EU languages plus 11 more (35 in all). Codes are ISO 639-1.
Also the one place that maps a code to its ``gflanguages`` entry (UDHR sample text).
"""

from __future__ import annotations

import functools

EU_LANGUAGES: tuple[str, ...] = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr",
    "hu", "it", "lt", "lv", "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv",
)


# English names of the languages prompts mention (translation, cross-lingual instructions).
LANGUAGE_NAMES: dict[str, str] = {
    "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "hr": "Croatian", "hu": "Hungarian", "it": "Italian", "lt": "Lithuanian",
    "lv": "Latvian", "mt": "Maltese", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish", "ar": "Arabic",
    "ca": "Catalan", "gl": "Galician", "hi": "Hindi", "ja": "Japanese", "ko": "Korean",
    "no": "Norwegian", "ru": "Russian", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
    "he": "Hebrew", "vi": "Vietnamese", "th": "Thai", "km": "Khmer", "ms": "Malay",
    "bn": "Bengali", "te": "Telugu", "sw": "Swahili", "fa": "Persian", "id": "Indonesian",
}

EXTRA_LANGUAGES: tuple[str, ...] = (
    "ar", "ca", "gl", "hi", "ja", "ko", "no", "ru", "tr", "uk", "zh",
)

EUROLLM_LANGUAGES: tuple[str, ...] = EU_LANGUAGES + EXTRA_LANGUAGES

# The script each EU language is written in (used to pick the right gflanguages entry).
PRIMARY_SCRIPT: dict[str, str] = {lang: "Latn" for lang in EU_LANGUAGES} | {
    "bg": "Cyrl",
    "el": "Grek",
}


def gflanguages_key(code: str) -> str:
    """The gflanguages key of an ISO code ("el" -> "el_Grek"); a full key passes through."""
    return code if "_" in code else f"{code}_{PRIMARY_SCRIPT.get(code, 'Latn')}"


@functools.lru_cache(maxsize=1)
def load_gflanguages() -> dict:
    """All gflanguages entries, parsed once per process (~1,700 small protos, 0.3 s)."""
    from gflanguages import LoadLanguages

    return LoadLanguages()
