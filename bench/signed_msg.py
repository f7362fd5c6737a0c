#!/usr/bin/python3
"""bench/signed_msg.py OUTDIR SIZE: scenario E's inputs.  A fresh RSA-2048
key, a message of about SIZE octets from sender@auth.bench.test signed by
dkimpy (relaxed/relaxed) into OUTDIR/message.eml, and the dnsmasq options
publishing the key, an SPF record passing 127.0.0.1 and a p=reject DMARC
policy into OUTDIR/zone.args (one option a line)."""

import base64
import sys

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

out, size = sys.argv[1], int(sys.argv[2])
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
priv = key.private_bytes(serialization.Encoding.PEM,
                         serialization.PrivateFormat.TraditionalOpenSSL,
                         serialization.NoEncryption())
pub = base64.b64encode(key.public_key().public_bytes(
    serialization.Encoding.DER,
    serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
head = (b"From: Bench <sender@auth.bench.test>\r\n"
        b"To: <tbench1@bench.test>\r\n"
        b"Subject: tern benchmark, signed\r\n"
        b"Message-ID: <signed@auth.bench.test>\r\n"
        b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
line = b"x" * 76 + b"\r\n"
body = line * max(1, (size - len(head)) // len(line))
msg = head + body
sig = dkim.sign(msg, b"bench", b"auth.bench.test", priv,
                canonicalize=(b"relaxed", b"relaxed"))
with open(f"{out}/message.eml", "wb") as f:
    f.write(sig + msg)
p = ",".join(pub[i:i + 200] for i in range(0, len(pub), 200))
with open(f"{out}/zone.args", "w") as f:
    f.write(f"--txt-record=bench._domainkey.auth.bench.test,"
            f"v=DKIM1; k=rsa; p={p}\n"
            "--txt-record=auth.bench.test,v=spf1 ip4:127.0.0.1 -all\n"
            "--txt-record=_dmarc.auth.bench.test,v=DMARC1; p=reject\n"
            "--local=/bench.test/\n")
