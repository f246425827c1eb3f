package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyport/keyport/internal/smtptest"
)

// TestMailTestCommand runs `keyport mail test` against the real SMTP test
// server over STARTTLS with AUTH (the password from password_file): the
// German test message arrives; a recipient the server refuses gives a
// clear error, marked permanent, and exit 1; without [mail] the command
// says mail is off.
func TestMailTestCommand(t *testing.T) {
	srv := smtptest.Start(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "smtp_password")
	if err := os.WriteFile(pw, []byte(smtptest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(srv.StartTLSAddr, ":")
	cfgFile := filepath.Join(dir, "keyport.toml")
	if err := os.WriteFile(cfgFile, []byte(`issuer = "https://id.example.com"
[mail]
host = "127.0.0.1"
port = `+port+`
username = "`+smtptest.Username+`"
password_file = "`+filepath.ToSlash(pw)+`"
from = "Keyport <keyport@id.example.com>"
ca_file = "`+filepath.ToSlash(srv.CAFile)+`"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cliEnv(dir)
	to := smtptest.NewAddress("cli")
	r := cliMust(t, env, "", "mail", "test", "--config", cfgFile, "--to", to, "--lang", "de")
	if !strings.Contains(r.Stdout, "sent a test message to "+to) {
		t.Errorf("stdout: %s", r)
	}
	d := srv.WaitFor(t, to)
	if d.Subject != "Testnachricht von Keyport auf id.example.com" || !d.TLS || d.Login != smtptest.Username ||
		!strings.Contains(d.Text, "keyport mail test") || !strings.Contains(d.HTML, "<strong>Keyport</strong>") ||
		!strings.HasSuffix(d.Header.Get("Message-Id"), "@id.example.com>") {
		t.Errorf("delivered: subject %q, tls %v, login %q, message-id %q\ntext %q\nhtml %q", d.Subject, d.TLS, d.Login, d.Header.Get("Message-Id"), d.Text, d.HTML)
	}
	if strings.Contains(r.Stdout+r.Stderr, smtptest.Password) {
		t.Error("the output shows the SMTP password")
	}

	r = cliFail(t, env, "", 1, "RCPT TO command: 550", "mail", "test", "--config", cfgFile, "--to", smtptest.NewAddress("reject"))
	if !strings.Contains(r.Stderr, "the test message was not sent") || !strings.Contains(r.Stderr, "permanent failure") {
		t.Errorf("refused recipient: %s", r)
	}
	cliFail(t, env, "", 1, "mail is off", "mail", "test", "--to", to)
	cliFail(t, env, "", 2, "--to ADDR is required", "mail", "test", "--config", cfgFile)
}
