"""Language codes used across the data and tokenizer stages.

EuroLLM covers the 24 official EU languages plus 11 more (35 in all). Codes are ISO 639-1.
"""

EU_LANGUAGES: tuple[str, ...] = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr",
    "hu", "it", "lt", "lv", "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv",
)

EXTRA_LANGUAGES: tuple[str, ...] = (
    "ar", "ca", "gl", "hi", "ja", "ko", "no", "ru", "tr", "uk", "zh",
)

EUROLLM_LANGUAGES: tuple[str, ...] = EU_LANGUAGES + EXTRA_LANGUAGES

# The script each EU language is written in (used to pick the right gflanguages entry).
PRIMARY_SCRIPT: dict[str, str] = {lang: "Latn" for lang in EU_LANGUAGES} | {
    "bg": "Cyrl",
    "el": "Grek",
}
