"""PII redaction (emails, IP addresses, phone numbers) and the URL blocklist hook.

``PIIRedactor`` replaces matches with placeholders (``<EMAIL>``, ``<IP_ADDRESS>``,
``<PHONE_NUMBER>`` by default) and records how many of each it replaced in
``metadata["pii_redactions"]``; it never drops a document. Private, loopback and documentation
IP ranges are redacted too (they identify machines in logs all the same); version-like strings
("1.2.3.4" inside a longer dotted run) are not IPs. Phone numbers: international (+CC ...) and
national formats with separators, 7 to 15 digits, so dates, years and plain numbers survive.

``URLBlocklist`` drops documents whose ``metadata["url"]`` (configurable key) has a blocked
domain (or a subdomain of one) or contains a blocked substring; ``predicate=`` plugs in any
callable ``url -> reason | None`` instead.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Callable, Iterable

from eurollm_jax.filtering.config import PIISection, URLBlocklistSection
from eurollm_jax.filtering.core import Document, DocumentFilter

EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4_RE = re.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\d]|\.\d)")
IPV6_RE = re.compile(
    r"(?<![:\w])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?"
    r"|::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})(?![:\w])")
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(?0\d{1,4}\)?[ ./-]\d{2,4}(?:[ .-]\d{2,4}){1,3})(?![\w])")


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


class PIIRedactor(DocumentFilter):
    """Redacts emails, IP addresses and phone numbers in the text; keeps every document."""

    name = "pii"

    def __init__(self, emails: bool = PIISection.emails,
                 ip_addresses: bool = PIISection.ip_addresses,
                 phone_numbers: bool = PIISection.phone_numbers,
                 email_replacement: str = "<EMAIL>", ip_replacement: str = "<IP_ADDRESS>",
                 phone_replacement: str = "<PHONE_NUMBER>"):
        self.emails, self.ips, self.phones = emails, ip_addresses, phone_numbers
        self.repl = {"email": email_replacement, "ip": ip_replacement, "phone": phone_replacement}

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        counts = {}
        if self.emails and "@" in text:
            text, counts["email"] = EMAIL_RE.subn(self.repl["email"], text)
        if self.ips:
            text, n4 = IPV4_RE.subn(self.repl["ip"], text)
            n6 = 0
            if "::" in text or text.count(":") >= 7:
                text, n6 = IPV6_RE.subn(self.repl["ip"], text)
            counts["ip"] = n4 + n6
        if self.phones:
            n = 0

            def _phone(m):
                nonlocal n
                if 7 <= _digits(m.group(0)) <= 15:
                    n += 1
                    return self.repl["phone"]
                return m.group(0)

            text = PHONE_RE.sub(_phone, text)
            counts["phone"] = n
        return text, {k: v for k, v in counts.items() if v}

    def filter(self, doc: Document) -> str | None:
        doc.text, counts = self.redact(doc.text)
        if counts:
            doc.metadata["pii_redactions"] = counts
        return None


class URLBlocklist(DocumentFilter):
    """Drops documents whose URL is on a blocklist (domains, substrings or a predicate)."""

    name = "url_blocklist"

    def __init__(self, domains: Iterable[str] = (), substrings: Iterable[str] = (),
                 predicate: Callable[[str], str | None] | None = None,
                 url_key: str = URLBlocklistSection.url_key,
                 domains_file: str | None = None):
        domains = {d.strip().lower().lstrip(".") for d in domains if d.strip()}
        if domains_file:
            with open(domains_file, encoding="utf-8") as f:
                domains |= {line.strip().lower().lstrip(".") for line in f
                            if line.strip() and not line.startswith("#")}
        self.domains = frozenset(domains)
        self.substrings = tuple(s.lower() for s in substrings)
        self.predicate = predicate
        self.url_key = url_key

    def filter(self, doc: Document) -> str | None:
        url = doc.metadata.get(self.url_key)
        if not isinstance(url, str) or not url:
            return None
        if self.predicate is not None:
            return self.predicate(url)
        host = (urllib.parse.urlsplit(url if "//" in url else "//" + url).hostname or "").lower()
        parts = host.split(".")
        for i in range(len(parts) - 1):
            if ".".join(parts[i:]) in self.domains:
                return "blocked_domain"
        low = url.lower()
        if any(s in low for s in self.substrings):
            return "blocked_substring"
        return None
