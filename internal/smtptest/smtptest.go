// Package smtptest starts a real SMTP server for tests: Debian's
// python3-aiosmtpd running server.py (beside this file) on loopback, once
// per test package, with three listeners:
//
//   - PlainAddr: no TLS and no STARTTLS offered;
//   - StartTLSAddr: STARTTLS offered and required, AUTH after it;
//   - ImplicitAddr: TLS from the first byte (SMTPS), AUTH offered.
//
// The TLS listeners present a certificate for 127.0.0.1 and localhost from
// a fresh test CA (CAFile). AUTH accepts Username and Password. A recipient
// whose local part starts with "reject" is refused with 550, "tempfail"
// with 451. Tests read what arrived with WaitFor.
//
// The package's TestMain calls Run, which stops the server after the
// tests. When python3-aiosmtpd is missing the test is skipped with a
// message, unless KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh),
// where it fails.
package smtptest

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/daemontest"
)

//go:embed server.py
var script []byte

// Username and Password are the credentials the TLS listeners accept.
const (
	Username = "keyport"
	Password = "smtp-test-secret"
)

// Server is the running test server.
type Server struct {
	Host                                  string // 127.0.0.1
	PlainAddr, StartTLSAddr, ImplicitAddr string // host:port
	CAFile                                string // PEM of the CA that signed the server's certificate
	dir                                   string // where server.py writes messages
	log                                   string
	proc                                  *daemontest.Process
}

var (
	once     sync.Once
	shared   *Server
	tempRoot string
)

// Run runs the tests of m and stops the server afterwards; call it from
// TestMain: func TestMain(m *testing.M) { os.Exit(smtptest.Run(m)) }.
func Run(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.proc.Stop()
	}
	if tempRoot != "" {
		os.RemoveAll(tempRoot)
	}
	return code
}

// Start returns the package's server, starting it on the first call.
func Start(t testing.TB) *Server {
	t.Helper()
	python := findPython(t)
	once.Do(func() { shared = start(t, python) })
	if shared == nil {
		t.Fatal("smtptest: the SMTP test server failed to start (see the first test that used it)")
	}
	return shared
}

// findPython returns a python3 that can import aiosmtpd: Debian's
// /usr/bin/python3 first, since a python3 earlier on PATH (pyenv, a
// virtualenv) does not see Debian's packages.
func findPython(t testing.TB) string {
	t.Helper()
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(c)
		if err == nil && exec.Command(path, "-c", "import aiosmtpd").Run() == nil {
			return path
		}
	}
	const msg = "python3 with aiosmtpd is not installed (apt-get install python3-aiosmtpd)"
	if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s; KEYPORT_REQUIRE_INTEGRATION=1 requires the mail tests", msg)
	}
	t.Skipf("%s: skipping the mail tests", msg)
	return ""
}

func start(t testing.TB, python string) *Server {
	t.Helper()
	root, err := os.MkdirTemp("", "smtptest-")
	if err != nil {
		t.Fatal(err)
	}
	tempRoot = root
	dir := filepath.Join(root, "messages")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, cert, key := daemontest.WriteTestPKI(t, root)
	scriptPath := filepath.Join(root, "server.py")
	if err := os.WriteFile(scriptPath, script, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{Host: "127.0.0.1", CAFile: ca, dir: dir, log: filepath.Join(root, "server.log")}
	s.PlainAddr, s.StartTLSAddr, s.ImplicitAddr = daemontest.FreeAddr(t), daemontest.FreeAddr(t), daemontest.FreeAddr(t)
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	cmd := exec.Command(python, scriptPath, dir, cert, key, Username, Password,
		port(s.PlainAddr), port(s.StartTLSAddr), port(s.ImplicitAddr))
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logf, logf
	// The listeners start in order; the last one listening means all do.
	s.proc = daemontest.Start(t, cmd, s.ImplicitAddr, s.Log)
	return s
}

// Log returns what the server has printed so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// NewAddress returns a recipient address no other test uses:
// prefix.RANDOM@example.org. A prefix starting with "reject" makes the
// server refuse it with 550, "tempfail" with 451.
func NewAddress(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "." + hex.EncodeToString(b[:]) + "@example.org"
}

// Delivered is one message the server accepted.
type Delivered struct {
	Listener string   // "plain", "starttls" or "implicit"
	MailFrom string   // the envelope sender
	RcptTo   []string // the envelope recipients
	TLS      bool     // the session was encrypted
	Login    string   // the AUTH user name, "" without AUTH
	Raw      []byte   // the message as received
	Header   mail.Header
	Subject  string // decoded from RFC 2047
	Text     string // the text/plain part, decoded
	HTML     string // the text/html part, decoded; "" when there is none
}

// WaitFor waits (up to 10 seconds) until a message for the envelope
// recipient to has arrived and returns it; the test fails if none does.
func (s *Server) WaitFor(t testing.TB, to string) Delivered {
	t.Helper()
	return s.WaitForNth(t, to, 1)
}

// WaitForNth waits (up to 10 seconds) until n messages for to have
// arrived and returns the nth, oldest first.
func (s *Server) WaitForNth(t testing.TB, to string, n int) Delivered {
	t.Helper()
	return s.WaitForNthWithin(t, to, n, 10*time.Second)
}

// WaitForNthWithin is WaitForNth waiting up to d.
func (s *Server) WaitForNthWithin(t testing.TB, to string, n int, d time.Duration) Delivered {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.Received(t, to)
		if len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtptest: %d messages for %s did not arrive within %s; server log:\n%s", n, to, d, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Received returns every message that has arrived for the envelope
// recipient to, oldest first.
func (s *Server) Received(t testing.TB, to string) []Delivered {
	t.Helper()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []Delivered
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".eml")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		var d Delivered
		meta, err := os.ReadFile(filepath.Join(s.dir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Listener string   `json:"listener"`
			MailFrom string   `json:"mail_from"`
			RcptTos  []string `json:"rcpt_tos"`
			TLS      bool     `json:"tls"`
			Login    *string  `json:"login"`
		}
		if err := json.Unmarshal(meta, &m); err != nil {
			t.Fatalf("smtptest: %s.json: %v", name, err)
		}
		if !slices.Contains(m.RcptTos, to) {
			continue
		}
		d.Listener, d.MailFrom, d.RcptTo, d.TLS = m.Listener, m.MailFrom, m.RcptTos, m.TLS
		if m.Login != nil {
			d.Login = *m.Login
		}
		if d.Raw, err = os.ReadFile(filepath.Join(s.dir, name+".eml")); err != nil {
			t.Fatal(err)
		}
		if err := d.parse(); err != nil {
			t.Fatalf("smtptest: message %s: %v\n%s", name, err, d.Raw)
		}
		out = append(out, d)
	}
	return out
}

// parse fills Header, Subject, Text and HTML from Raw.
func (d *Delivered) parse() error {
	msg, err := mail.ReadMessage(bytes.NewReader(d.Raw))
	if err != nil {
		return err
	}
	d.Header = msg.Header
	if d.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	return d.readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
}

func (d *Delivered) readPart(contentType, encoding string, body io.Reader) error {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			// NextPart decodes quoted-printable itself and drops the header.
			if err := d.readPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	switch mediaType {
	case "text/plain":
		d.Text = string(b)
	case "text/html":
		d.HTML = string(b)
	}
	return nil
}
