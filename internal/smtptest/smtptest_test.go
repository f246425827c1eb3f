package smtptest

import (
	"crypto/tls"
	"crypto/x509"
	"net/smtp"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// TestDeliversAndParses sends a multipart message with net/smtp over
// STARTTLS with AUTH and reads it back through WaitFor.
func TestDeliversAndParses(t *testing.T) {
	s := Start(t)
	to := NewAddress("self")
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := smtp.Dial(s.StartTLSAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: roots}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Auth(smtp.PlainAuth("", Username, Password, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	body := "From: a@example.org\r\nTo: " + to + "\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n" +
		"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hello</p>\r\n--b--\r\n"
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d := s.WaitFor(t, to)
	if d.Listener != "starttls" || !d.TLS || d.Login != Username || d.MailFrom != "a@example.org" {
		t.Errorf("envelope: %+v", d)
	}
	if d.Subject != "Grüße" || d.Text != "Grüße" || strings.TrimSpace(d.HTML) != "<p>hello</p>" {
		t.Errorf("subject %q, text %q, html %q", d.Subject, d.Text, d.HTML)
	}
}

// TestRefusals: the plain listener offers no STARTTLS, the STARTTLS one
// refuses MAIL before it, "reject" recipients get 550, "tempfail" 451.
func TestRefusals(t *testing.T) {
	s := Start(t)
	c, err := smtp.Dial(s.PlainAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("the plain listener offers STARTTLS")
	}
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	for prefix, code := range map[string]string{"reject": "550", "tempfail": "451"} {
		if err := c.Rcpt(NewAddress(prefix)); err == nil || !strings.HasPrefix(err.Error(), code) {
			t.Errorf("RCPT %s: %v, want %s", prefix, err, code)
		}
	}
	c2, err := smtp.Dial(s.StartTLSAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Mail("a@example.org"); err == nil || !strings.HasPrefix(err.Error(), "530") {
		t.Errorf("MAIL before STARTTLS: %v, want 530", err)
	}
}
