package mail_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/smtptest"
	"github.com/keyport/keyport/mail"
)

func TestMain(m *testing.M) { os.Exit(smtptest.Run(m)) }

// sender builds a Sender for one listener of the test server.
func sender(t *testing.T, addr, tlsMode string, change func(*mail.Options)) *mail.Sender {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	opts := mail.Options{Host: host, Port: p, TLS: tlsMode, From: "Keyport <keyport@id.example.com>",
		Timeout: 5 * time.Second, MessageIDHost: "id.example.com"}
	if change != nil {
		change(&opts)
	}
	s, err := mail.New(opts)
	if err != nil {
		t.Fatalf("mail.New: %v", err)
	}
	return s
}

func send(t *testing.T, s *mail.Sender, m mail.Message) error {
	t.Helper()
	return s.Send(context.Background(), m)
}

// TestPlainText: a text-only message over a loopback relay without TLS
// arrives with its headers, a UTF-8 subject encoded per RFC 2047 and a
// single text/plain body.
func TestPlainText(t *testing.T) {
	srv := smtptest.Start(t)
	to := smtptest.NewAddress("plain")
	s := sender(t, srv.PlainAddr, mail.NoTLS, nil)
	text := "Hallo Jürgen,\r\nthis is line two.\r\n"
	if err := send(t, s, mail.Message{To: "Jürgen <" + to + ">", Subject: "Grüße aus Köln", Text: text, ID: "test.1-a_b"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	d := srv.WaitFor(t, to)
	if d.Listener != "plain" || d.TLS {
		t.Errorf("listener %q, tls %v", d.Listener, d.TLS)
	}
	if d.MailFrom != "keyport@id.example.com" {
		t.Errorf("envelope sender %q", d.MailFrom)
	}
	if got := d.Header.Get("Message-Id"); got != "<test.1-a_b@id.example.com>" {
		t.Errorf("Message-ID %q", got)
	}
	if raw := d.Header.Get("Subject"); !strings.HasPrefix(raw, "=?UTF-8?") {
		t.Errorf("raw Subject %q is not RFC 2047 encoded", raw)
	}
	if d.Subject != "Grüße aus Köln" {
		t.Errorf("Subject %q", d.Subject)
	}
	if d.Text != text || d.HTML != "" {
		t.Errorf("text %q, html %q", d.Text, d.HTML)
	}
	if ct := d.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if date, err := d.Header.Date(); err != nil || time.Since(date) > time.Minute {
		t.Errorf("Date %q: %v", d.Header.Get("Date"), err)
	}
	if from := d.Header.Get("From"); !strings.Contains(from, "keyport@id.example.com") {
		t.Errorf("From %q", from)
	}
	if got := d.Header.Get("To"); !strings.Contains(got, to) {
		t.Errorf("To %q", got)
	}
	if d.Header.Get("User-Agent") != "" || d.Header.Get("X-Mailer") != "" || d.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers: %v", d.Header)
	}
}

// TestMultipartOverStartTLSWithAuth: with HTML the message is
// multipart/alternative; it travels over STARTTLS, verified against the
// test CA, and authenticates.
func TestMultipartOverStartTLSWithAuth(t *testing.T) {
	srv := smtptest.Start(t)
	to := smtptest.NewAddress("multi")
	s := sender(t, srv.StartTLSAddr, mail.StartTLS, func(o *mail.Options) {
		o.CAFile, o.Username, o.Password = srv.CAFile, smtptest.Username, smtptest.Password
	})
	html := "<p>Hallo <b>Jürgen</b></p>"
	if err := send(t, s, mail.Message{To: to, Subject: "Test", Text: "Hallo Jürgen", HTML: html}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	d := srv.WaitFor(t, to)
	if d.Listener != "starttls" || !d.TLS || d.Login != smtptest.Username {
		t.Errorf("listener %q, tls %v, login %q", d.Listener, d.TLS, d.Login)
	}
	if ct := d.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type %q", ct)
	}
	if d.Text != "Hallo Jürgen" || d.HTML != html {
		t.Errorf("text %q, html %q", d.Text, d.HTML)
	}
	if id := d.Header.Get("Message-Id"); !strings.HasSuffix(id, "@id.example.com>") || len(id) < 20 {
		t.Errorf("generated Message-ID %q", id)
	}
}

// TestWrongPasswordIsTemporary: a refused AUTH is the operator's to fix;
// the message is not at fault.
func TestWrongPasswordIsTemporary(t *testing.T) {
	srv := smtptest.Start(t)
	s := sender(t, srv.StartTLSAddr, mail.StartTLS, func(o *mail.Options) {
		o.CAFile, o.Username, o.Password = srv.CAFile, smtptest.Username, "wrong"
	})
	err := send(t, s, mail.Message{To: smtptest.NewAddress("auth"), Subject: "x", Text: "x"})
	if err == nil || mail.IsPermanent(err) || !strings.Contains(err.Error(), "535") {
		t.Fatalf("Send with a wrong password: %v", err)
	}
}

// TestStartTLSChecksTheCertificate: without ca_file the test CA is not a
// system root, so the handshake fails and nothing is sent.
func TestStartTLSChecksTheCertificate(t *testing.T) {
	srv := smtptest.Start(t)
	to := smtptest.NewAddress("untrusted")
	err := send(t, sender(t, srv.StartTLSAddr, mail.StartTLS, nil), mail.Message{To: to, Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "certificate") || mail.IsPermanent(err) {
		t.Fatalf("Send without ca_file: %v", err)
	}
	if got := srv.Received(t, to); len(got) != 0 {
		t.Errorf("%d messages arrived", len(got))
	}
}

// TestStartTLSRequired: in starttls mode a server that offers no STARTTLS
// is refused before any mail is sent.
func TestStartTLSRequired(t *testing.T) {
	srv := smtptest.Start(t)
	to := smtptest.NewAddress("nostarttls")
	err := send(t, sender(t, srv.PlainAddr, mail.StartTLS, func(o *mail.Options) { o.CAFile = srv.CAFile }),
		mail.Message{To: to, Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || mail.IsPermanent(err) {
		t.Fatalf("Send to a server without STARTTLS: %v", err)
	}
	if got := srv.Received(t, to); len(got) != 0 {
		t.Errorf("%d messages arrived", len(got))
	}
}

// TestImplicitTLS: SMTPS with the test CA works, and is refused without
// it.
func TestImplicitTLS(t *testing.T) {
	srv := smtptest.Start(t)
	to := smtptest.NewAddress("implicit")
	s := sender(t, srv.ImplicitAddr, mail.ImplicitTLS, func(o *mail.Options) {
		o.CAFile, o.Username, o.Password = srv.CAFile, smtptest.Username, smtptest.Password
	})
	if err := send(t, s, mail.Message{To: to, Subject: "implicit", Text: "over TLS"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	// A body that does not end a line gets the CRLF SMTP needs.
	if d := srv.WaitFor(t, to); d.Listener != "implicit" || !d.TLS || d.Login != smtptest.Username || d.Text != "over TLS\r\n" {
		t.Errorf("listener %q, tls %v, login %q, text %q", d.Listener, d.TLS, d.Login, d.Text)
	}
	err := send(t, sender(t, srv.ImplicitAddr, mail.ImplicitTLS, nil), mail.Message{To: smtptest.NewAddress("implicit"), Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send without ca_file: %v", err)
	}
}

// TestRejectedRecipientIsPermanent: 550 to RCPT TO is permanent, with
// the server's answer in the error; 451 is temporary.
func TestRejectedRecipientIsPermanent(t *testing.T) {
	srv := smtptest.Start(t)
	s := sender(t, srv.PlainAddr, mail.NoTLS, nil)
	err := send(t, s, mail.Message{To: smtptest.NewAddress("reject"), Subject: "x", Text: "x"})
	var me *mail.Error
	if !errors.As(err, &me) || !mail.IsPermanent(err) || me.Code != 550 || !strings.Contains(err.Error(), "recipient rejected by the test server") {
		t.Fatalf("Send to a rejected recipient: %v", err)
	}
	err = send(t, s, mail.Message{To: smtptest.NewAddress("tempfail"), Subject: "x", Text: "x"})
	if !errors.As(err, &me) || mail.IsPermanent(err) || me.Code != 451 {
		t.Fatalf("Send to a deferred recipient: %v", err)
	}
}

// TestConnectionRefusedIsTemporary: nothing listens on the port.
func TestConnectionRefusedIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = send(t, sender(t, addr, mail.NoTLS, nil), mail.Message{To: "someone@example.org", Subject: "x", Text: "x"})
	if err == nil || mail.IsPermanent(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Send to a closed port: %v", err)
	}
}

// TestBadMessagesArePermanent: what no retry can fix fails before
// connecting.
func TestBadMessagesArePermanent(t *testing.T) {
	s := sender(t, "127.0.0.1:1", mail.NoTLS, nil)
	for _, m := range []mail.Message{
		{To: "not an address", Subject: "x", Text: "x"},
		{To: "a@example.org", Subject: "x\r\nBcc: b@example.org", Text: "x"},
		{To: "a@example.org", Subject: "x", Text: "x", ID: "<evil>@x"},
	} {
		if err := send(t, s, m); !mail.IsPermanent(err) {
			t.Errorf("%+v: %v, want a permanent error", m, err)
		}
	}
}

// TestNoTLSOnlyForLoopback: New refuses plain SMTP to another host, as
// the configuration does.
func TestNoTLSOnlyForLoopback(t *testing.T) {
	for host, ok := range map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true, "127.0.0.2": true,
		"smtp.example.com": false, "10.0.0.1": false, "localhost.example.com": false} {
		_, err := mail.New(mail.Options{Host: host, TLS: mail.NoTLS, From: "a@example.org"})
		if (err == nil) != ok {
			t.Errorf("tls none to %s: %v", host, err)
		}
	}
}
