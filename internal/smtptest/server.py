"""A test SMTP server for Keyport: aiosmtpd on loopback, several listeners
in one process, each delivered message written into a directory.

Usage: server.py DIR CERT KEY USER PASSWORD PLAIN_PORT STARTTLS_PORT IMPLICIT_PORT

  PLAIN_PORT     no TLS at all and no STARTTLS offered
  STARTTLS_PORT  STARTTLS offered and required before MAIL; AUTH after it
  IMPLICIT_PORT  TLS from the first byte (SMTPS); AUTH offered

Recipients whose local part starts with "reject" get 550, "tempfail" 451.
Each accepted message becomes NAME.json (envelope, listener, TLS, login)
and then NAME.eml (the bytes as received), written under a temporary name
and renamed, so a reader never sees half a message.
"""
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

directory, cert, key, user, password = sys.argv[1:6]
plain_port, starttls_port, implicit_port = (int(p) for p in sys.argv[6:9])

counter = 0
lock = threading.Lock()


def write(name, data):
    tmp = os.path.join(directory, "." + name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(directory, name))


class Handler:
    def __init__(self, listener):
        self.listener = listener

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: recipient rejected by the test server" % address
        if local.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        global counter
        with lock:
            counter += 1
            name = "%06d" % counter
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode()
        meta = {
            "listener": self.listener,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": login,
        }
        write(name + ".json", json.dumps(meta).encode())
        write(name + ".eml", envelope.original_content)
        return "250 2.0.0 OK: queued as " + name


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    # handled=False: aiosmtpd answers 535 itself on a failure.
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def tls_context():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


controllers = [
    Controller(Handler("plain"), hostname="127.0.0.1", port=plain_port),
    Controller(
        Handler("starttls"), hostname="127.0.0.1", port=starttls_port,
        tls_context=tls_context(), require_starttls=True,
        authenticator=authenticator, auth_require_tls=True,
    ),
    Controller(
        Handler("implicit"), hostname="127.0.0.1", port=implicit_port,
        ssl_context=tls_context(), authenticator=authenticator,
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this listener
        # speaks nothing else.
        auth_require_tls=False,
    ),
]
for c in controllers:
    c.start()

stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print("ready", flush=True)
stop.wait()
for c in controllers:
    c.stop()
