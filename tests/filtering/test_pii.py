"""PII redaction and the URL blocklist."""

from eurollm_jax.filtering import Document, PIIRedactor, URLBlocklist


def test_redacts_emails_ips_phones():
    r = PIIRedactor()
    text = ("Write to jane.doe+news@example.co.uk or ops@mail.example.org. Server 192.168.1.20 "
            "and 2001:db8::8a2e:370:7334 answered. Call +49 30 1234567 or (030) 123-4567, "
            "or +356 2123 4567.")
    out, counts = r.redact(text)
    assert "@" not in out and "192.168" not in out and "2001:db8" not in out
    assert "1234567" not in out and "2123 4567" not in out
    assert counts == {"email": 2, "ip": 2, "phone": 3}


def test_leaves_numbers_dates_versions_alone():
    r = PIIRedactor()
    text = ("In 1998 the price was 1,234.50 EUR on 12.03.2021 (version 1.2.3.4.5, "
            "ISBN 978-3-16-148410-0 is not a phone), chapter 3.14, room 101.")
    out, counts = r.redact(text)
    assert counts.get("ip", 0) == 0 and counts.get("email", 0) == 0
    assert "1998" in out and "12.03.2021" in out and "1.2.3.4.5" in out


def test_step_records_counts_and_keeps_document():
    step = PIIRedactor()
    kept, dropped = step([Document("a", "mail me: a@b.com")])
    assert not dropped and kept[0].text == "mail me: <EMAIL>"
    assert kept[0].metadata["pii_redactions"] == {"email": 1}


def test_url_blocklist(tmp_path):
    f = tmp_path / "block.txt"
    f.write_text("# comment\nbad.example\n")
    step = URLBlocklist(domains=["spam.test"], substrings=["/casino/"], domains_file=str(f))
    docs = [Document("1", "t", {"url": "https://www.spam.test/x"}),
            Document("2", "t", {"url": "http://bad.example"}),
            Document("3", "t", {"url": "https://ok.example/casino/win"}),
            Document("4", "t", {"url": "https://notspam.test.org/"}),
            Document("5", "t", {})]
    kept, dropped = step(docs)
    assert [d.id for d in kept] == ["4", "5"]
    assert [d.drop_reason for d in dropped] == ["url_blocklist:blocked_domain"] * 2 + [
        "url_blocklist:blocked_substring"]
    custom = URLBlocklist(predicate=lambda u: "nope" if "4" in u else None)
    assert custom.filter(Document("x", "t", {"url": "a4"})) == "nope"
