// Package mail sends Keyport's mail over SMTP: one Message at a time,
// through github.com/wneessen/go-mail, with the server's certificate
// checked and errors told apart as permanent (the server refused this
// message: do not retry) or temporary (retry later).
//
// It imports nothing of Keyport's: cmd/keyport builds Options from the
// [mail] table of the configuration, and the outbox delivers through
// Sender.Send.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"os"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// The TLS modes of Options.TLS.
const (
	// StartTLS connects in plain text and upgrades with STARTTLS; a server
	// that does not offer it is refused.
	StartTLS = "starttls"
	// ImplicitTLS speaks TLS from the first byte (SMTPS, port 465).
	ImplicitTLS = "implicit"
	// NoTLS sends in plain text; only to a loopback host.
	NoTLS = "none"
)

// Options says how to reach the SMTP server. The zero Port and Timeout
// take the defaults (587, 465 or 25 by TLS; 10 seconds).
type Options struct {
	Host string
	Port int
	TLS  string // StartTLS (when empty), ImplicitTLS or NoTLS
	// Username turns on SMTP AUTH (the strongest mechanism both sides
	// have; PLAIN and LOGIN only over TLS). Password is never logged.
	Username, Password string
	// From is one RFC 5322 address, such as "Keyport <id@example.com>".
	From string
	// CAFile is a PEM file of roots to trust instead of the system's.
	CAFile string
	// HELO is the name given in EHLO; empty: the machine's host name.
	HELO string
	// Timeout bounds connecting and each wait for an answer.
	Timeout time.Duration
	// MessageIDHost is the right-hand side of Message-ID headers (the
	// issuer's host); empty: the domain of From.
	MessageIDHost string
}

// Message is one mail to one recipient.
type Message struct {
	To      string // one address, with or without a display name
	Subject string
	Text    string // the plain-text body, always sent
	HTML    string // optional: sent as the alternative to Text
	// ID makes the Message-ID <ID@host>: the same ID on every attempt
	// lets receivers drop a repeated delivery. Letters, digits and
	// ".-_" only; empty: a random one.
	ID string
}

// Sender sends messages with fixed Options. It is safe for concurrent use:
// each Send opens its own connection.
type Sender struct {
	opts   Options
	from   *netmail.Address
	idHost string
	tls    *tls.Config
	now    func() time.Time
}

// New checks opts and reads the CA file. It refuses NoTLS for a host that
// is not loopback, as the configuration does.
func New(opts Options) (*Sender, error) {
	if opts.Host == "" {
		return nil, errors.New("mail: no host")
	}
	if opts.TLS == "" {
		opts.TLS = StartTLS
	}
	if opts.Port == 0 {
		opts.Port = map[string]int{StartTLS: 587, ImplicitTLS: 465, NoTLS: 25}[opts.TLS]
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	switch opts.TLS {
	case StartTLS, ImplicitTLS:
	case NoTLS:
		if !IsLoopback(opts.Host) {
			return nil, fmt.Errorf("mail: tls %q is allowed only for a loopback host, not %q", NoTLS, opts.Host)
		}
	default:
		return nil, fmt.Errorf("mail: unknown tls mode %q", opts.TLS)
	}
	from, err := netmail.ParseAddress(opts.From)
	if err != nil {
		return nil, fmt.Errorf("mail: from address %q: %w", opts.From, err)
	}
	idHost := opts.MessageIDHost
	if idHost == "" {
		idHost = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	tlsConfig := &tls.Config{ServerName: opts.Host, MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: ca_file %s holds no PEM certificate", opts.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	return &Sender{opts: opts, from: from, idHost: idHost, tls: tlsConfig, now: time.Now}, nil
}

// IsLoopback reports whether host is "localhost" or a loopback address:
// the only hosts mail goes to without TLS.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the server's host:port.
func (s *Sender) Addr() string {
	return net.JoinHostPort(s.opts.Host, fmt.Sprint(s.opts.Port))
}

// Send delivers m in one SMTP session. It returns nil once the server has
// accepted the message (250 after DATA), even when the session fails after
// that, so a retry never repeats an accepted message. Errors are *Error;
// IsPermanent tells whether a retry can help.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg, err := s.build(m)
	if err != nil {
		return &Error{Permanent: true, Err: fmt.Errorf("mail to %s: %w", m.To, err)}
	}
	client, err := gomail.NewClient(s.opts.Host, s.clientOptions()...)
	if err != nil {
		return &Error{Err: fmt.Errorf("mail to %s: set up SMTP client: %w", m.To, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	// Everything before the message (connecting, TLS, the greeting, EHLO,
	// AUTH) is temporary whatever the answer: a bad certificate, a missing
	// STARTTLS or a refused password is the operator's to fix, and mail
	// queued meanwhile should go out once they have (Postfix, too, defers
	// on a failed AUTH by default).
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return &Error{Err: fmt.Errorf("mail to %s: connect to %s (tls %s): %w", m.To, s.Addr(), s.opts.TLS, err)}
	}
	sendErr := client.SendWithSMTPClient(conn, msg)
	closeErr := client.CloseWithSMTPClient(conn)
	if msg.IsDelivered() {
		return nil // accepted; a failed RSET or QUIT afterwards changes nothing
	}
	if sendErr == nil {
		sendErr = closeErr
	}
	if sendErr == nil {
		sendErr = errors.New("the server did not confirm the message")
	}
	return &Error{Permanent: permanent(sendErr), Code: replyCode(sendErr),
		Err: fmt.Errorf("mail to %s via %s: %w", m.To, s.Addr(), sendErr)}
}

func (s *Sender) clientOptions() []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.opts.Port),
		gomail.WithTimeout(s.opts.Timeout),
		gomail.WithTLSConfig(s.tls),
	}
	switch s.opts.TLS {
	case ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case NoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.opts.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.opts.HELO))
	}
	if s.opts.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.opts.Username), gomail.WithPassword(s.opts.Password))
	}
	return opts
}

// build turns m into a go-mail message: From, To, Subject (RFC 2047 when
// not ASCII), Date, Message-ID, and a text body with an optional HTML
// alternative. It adds no tracking and names no mailer.
func (s *Sender) build(m Message) (*gomail.Msg, error) {
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("recipient %q: %w", m.To, err)
	}
	id := m.ID
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	} else if !validID(id) {
		return nil, fmt.Errorf("message id %q: use letters, digits and . - _ only", id)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("subject contains a line break")
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	msg.SetAddrHeaderFromMailAddress(gomail.HeaderTo, to)
	msg.Subject(m.Subject)
	msg.SetDateWithValue(s.now())
	msg.SetMessageIDWithValue(id + "@" + s.idHost)
	// RFC 3834: machine-sent, so vacation responders stay quiet.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

func validID(id string) bool {
	if len(id) > 200 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Error is a failed Send.
type Error struct {
	// Permanent: the server answered 5xx to the message (MAIL FROM, RCPT
	// TO or DATA), or the message itself is malformed; sending it again
	// gives the same answer. Anything else (no connection, a timeout, TLS
	// or AUTH trouble, a 4xx answer) is temporary.
	Permanent bool
	// Code is the server's reply code (550, 421), or 0 when the error did
	// not come from an answer.
	Code int
	Err  error
}

func (e *Error) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	return e.Err.Error() + " (" + kind + " failure)"
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a permanent Send failure: retrying
// the same message cannot succeed.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// permanent classifies a failure of the message transaction: a 5xx answer
// to MAIL FROM, RCPT TO or the end of DATA.
func permanent(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		code := se.ErrorCode()
		return code >= 500 && code < 600
	}
	return false
}

func replyCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return 0
}
