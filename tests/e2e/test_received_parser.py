"""The Received parser the other tests judge tern with (received.py):
it takes what RFC 5321 4.4 and RFC 5322 3.6.7 allow, from any MTA, and
refuses what they do not, so a test cannot pass on a broken field."""

import datetime

import pytest

import received

GOOD = [
    # tern's own shapes: MX, TLS, IPv6 client, sendmail
    ("Received: from client.test ([127.0.0.1])\r\n\tby mx.test (tern) with ESMTPS "
     "(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384) id 65f2c3a1b3e0a917\r\n"
     "\tfor <ben@example.org>; Sun, 6 Dec 2026 14:30:00 +0000",
     {"from": "client.test", "by": "mx.test", "with": "ESMTPS",
      "id": "65f2c3a1b3e0a917", "for": "<ben@example.org>"}, (None, "[127.0.0.1]")),
    ("Received: from six.client.test ([IPv6:::1]) by mx.test (tern) with ESMTP "
     "id x; 6 Dec 2026 13:00:00 -0130",
     {"from": "six.client.test", "with": "ESMTP"}, (None, "[IPv6:::1]")),
    ("Received: from local (uid 65534) by mx.test (tern) with local id abc; "
     "Sun, 06 Dec 2026 14:30:00 +0000", {"from": "local", "with": "local"}, None),
    # an address literal as the from value (a client whose HELO was no name)
    ("Received: from [192.0.2.7] (unknown [192.0.2.7]) by mx.test with SMTP; "
     "Sun, 6 Dec 2026 14:30:00 +0000", {"from": "[192.0.2.7]"}, ("unknown", "[192.0.2.7]")),
    # Postfix's, with nested comments, a double space and a zone comment
    ("Received: from mx.test (localhost [127.0.0.1]) (using TLSv1.3 with cipher "
     "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519) (No client "
     "certificate requested) by mx.pf.test (Postfix) with ESMTPS id 4Abc for "
     "<bob@pf.test>; Sun,  6 Dec 2026 14:30:00 +0000 (UTC)",
     {"by": "mx.pf.test", "id": "4Abc"}, ("localhost", "[127.0.0.1]")),
    # via, a msg-id as id, a bare mailbox in for, no seconds
    ("Received: from a.example by b.example via TCP with ESMTP id <x.y@b.example> "
     "for c@d.example; Sun, 6 Dec 2026 14:30 +0000",
     {"via": "TCP", "id": "<x.y@b.example>", "for": "c@d.example"}, None),
]

BAD = [
    "Received: from bad!helo by mx.test; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from -bad.test by mx.test; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: by mx.test from a.b; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b with ESMTP; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b by mx.test with ESMTP for <x@y.z> id 3; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b by mx.test with ESMTP with SMTP; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b by mx.test with ESMTP for <x@y.z>",
    "Received: from a.b by mx.test; Mon, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b by mx.test; Sun, 31 Nov 2026 14:30:00 +0000",
    "Received: from a.b by mx.test; Sun, 6 Dec 2026 14:30:00",
    "Received: from [300.1.1.1] by mx.test; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b (unclosed by mx.test; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b by mx.test for <not an address>; Sun, 6 Dec 2026 14:30:00 +0000",
    "Received: from a.b by mx.test frob x; Sun, 6 Dec 2026 14:30:00 +0000",
]


@pytest.mark.parametrize("field,want,tcp", GOOD)
def test_valid_fields_parse(field, want, tcp):
    r = received.parse(field)
    for k, v in want.items():
        assert r.value(k) == v, (k, r)
    assert r.tcp_info() == tcp, r
    # every sample is 14:30 UTC, whatever its zone says
    assert r.date.astimezone(datetime.timezone.utc) == datetime.datetime(
        2026, 12, 6, 14, 30, tzinfo=datetime.timezone.utc), r.date


@pytest.mark.parametrize("field", BAD)
def test_invalid_fields_refused(field):
    with pytest.raises(received.ReceivedError):
        received.parse(field)
