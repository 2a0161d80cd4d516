"""An SMTP server for hostwatch's tests (aiosmtpd; run with /usr/bin/python3,
where Debian's python3-aiosmtpd imports).

Binds 127.0.0.1 on PORT (0 picks one) and prints `listening <port>`.
  --starttls CERT KEY  require STARTTLS before anything else
  --tls CERT KEY       implicit TLS (SMTPS)
  --auth USER:PASS     require AUTH (LOGIN or PLAIN) with these credentials
  --fail-first N       answer the first N DATA with 451 4.3.0
  --reject-rcpt ADDR   answer RCPT TO:<ADDR> with 550 5.1.1 (may repeat)
  --spool DIR          write each accepted message to DIR/<n>.eml (atomically),
                       numbering on from what DIR already holds
"""
import argparse
import asyncio
import os
import ssl
import warnings

from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    def __init__(self, spool, fail_first, reject):
        self.spool = spool
        self.fails_left = fail_first
        self.reject = reject

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fails_left > 0:
            self.fails_left -= 1
            return "451 4.3.0 try again later"
        if self.spool:
            taken = [int(f[:-4]) for f in os.listdir(self.spool) if f[:-4].isdigit() and f.endswith(".eml")]
            n = max(taken, default=0) + 1
            head = "X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (
                envelope.mail_from, ", ".join(envelope.rcpt_tos))
            tmp = os.path.join(self.spool, ".%d.tmp" % n)
            with open(tmp, "wb") as f:
                f.write(head.encode() + envelope.original_content)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, os.path.join(self.spool, "%d.eml" % n))
        return "250 2.0.0 OK"


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    warnings.simplefilter("ignore")  # AUTH without TLS is what --auth alone asks for
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--reject-rcpt", action="append", default=[])
    p.add_argument("--spool")
    a = p.parse_args()

    def authenticator(server, session, envelope, mechanism, data):
        user, _, password = a.auth.partition(":")
        ok = data.login == user.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    handler = Handler(a.spool, a.fail_first, a.reject_rcpt)
    kw = dict(hostname="smtpd.test", auth_require_tls=False)
    if a.starttls:
        kw.update(tls_context=tls_context(*a.starttls), require_starttls=True)
    if a.auth:
        kw.update(authenticator=authenticator, auth_required=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kw), "127.0.0.1", a.port, reuse_address=True,
        ssl=tls_context(*a.tls) if a.tls else None)
    print("listening %d" % server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
