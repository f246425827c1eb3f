package account

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// Mail that account sends goes through the durable outbox: the message is
// committed in the same transaction as the change that needs it (a reset
// link's token), sealed, since a link in it is a secret, and a worker
// (package outbox, with a mail deliverer) sends it later, retrying for a
// day. Nothing here waits for SMTP.

// OutboxMail is the outbox kind of mail messages; OpenMail reads one.
const OutboxMail = "mail"

// mailSealPurpose binds a sealed mail to its use.
const mailSealPurpose = "outbox mail"

// Limits on the mail a caller can cause, per hour: a flood of requests
// never becomes a flood of mail.
const (
	resetRequestsPerAddress = 10 // password-reset requests from one address (an IPv6 /64)
	resetMailsPerAccount    = 3  // reset mails to one account
	mailLimitKeys           = 100_000
	// mailWorkers bounds the reset requests worked on at once; more are
	// dropped (and logged): each is a lookup and a write.
	mailWorkers = 8
)

// MailStore is what the mail flows need of storage.
type MailStore interface {
	GetUserByLogin(ctx context.Context, login string) (storage.User, error)
	CreateOneTimeToken(ctx context.Context, t storage.OneTimeToken, out ...storage.OutboxMessage) error
	PeekOneTimeToken(ctx context.Context, hash, purpose string) (storage.OneTimeToken, error)
	ConsumeOneTimeToken(ctx context.Context, hash, purpose string) (storage.OneTimeToken, error)
	EnqueueOutbox(ctx context.Context, msgs ...storage.OutboxMessage) error
	// For the security notifications (notifications.go).
	GetUser(ctx context.Context, id string) (storage.User, error)
	ListLoginAttempts(ctx context.Context, userID string, limit int) ([]storage.LoginAttempt, error)
	ListExpiringTokens(ctx context.Context, from, before time.Time, limit int) ([]storage.Credential, error)
	UpdateCredential(ctx context.Context, userID, id string, fn func(storage.Credential) (storage.Credential, error), out ...storage.OutboxMessage) (storage.Credential, error)
}

// MailService holds the flows that send mail: today the forgotten
// password. It is off (Enabled false) until EnableMail, which cmd/keyport
// calls when [mail] is configured.
type MailService struct {
	*core
	store     MailStore
	users     *UserService
	templates *mail.Templates
	limits    *hourlyLimits
	// addressLimits counts requests per network apart from limits (per
	// account), so a flood from many networks, which fills it, cannot
	// refuse any account its mail.
	addressLimits *hourlyLimits
	work          chan struct{}
	// wg tracks the requests under way, for Wait.
	wg sync.WaitGroup
}

// EnableMail turns on the flows that send mail, rendering with templates.
// The messages wake the outbox worker SetOutboxWake names.
func (s *Service) EnableMail(templates *mail.Templates) {
	s.Mail.templates = templates
	s.AddReactor(s.Mail.react) // the security notifications
}

// Enabled tells whether mail is sent: the pages offer what needs it only
// then.
func (m *MailService) Enabled() bool { return m.templates != nil }

// Wait waits for the password-reset requests under way (shutdown, tests).
func (m *MailService) Wait() { m.wg.Wait() }

var (
	errMailOff       = Errorf(Unavailable, "Password reset by email is not available here. Please ask your administrator.")
	errResetThrottle = Errorf(RateLimited, "Too many password reset requests from your network. Please try again in an hour.")
)

// RequestPasswordReset starts a password reset for login (a username or
// email) asked for from ip, in lang (the page's language, used when the
// account has none). The answer is the same whether or not the account
// exists, and comes before the account is even looked up: the work goes
// on in the background, so the answer's time says nothing either. Only too
// many requests from one address are refused (RateLimited), which depends
// on the address alone.
//
// In the background: a local account gets a link (valid PasswordResetTTL,
// one use) at its recovery email, else its email; an account of a
// directory gets a note to reset its password there; system, blocked and
// unknown accounts get nothing. At most resetMailsPerAccount mails per
// account and hour.
func (m *MailService) RequestPasswordReset(ctx context.Context, login, ip, lang string) error {
	if !m.Enabled() {
		return errMailOff
	}
	login = normalizeLogin(login)
	if login == "" || len(login) > 320 {
		return FieldErrorf("login", "Enter your username or email address.")
	}
	if !m.addressLimits.allow("a:"+throttle.Address(ip), resetRequestsPerAddress, m.now()) {
		return errResetThrottle
	}
	select {
	case m.work <- struct{}{}:
	default:
		m.log.WarnContext(ctx, "password reset request dropped: too many under way", "client_ip", ip)
		return nil
	}
	m.wg.Add(1)
	// The request's context ends with its answer; the work does not.
	bg := context.WithoutCancel(ctx)
	go func() {
		defer func() { <-m.work; m.wg.Done() }()
		bg, cancel := context.WithTimeout(bg, 30*time.Second)
		defer cancel()
		if err := m.sendReset(bg, login, ip, lang); err != nil {
			m.log.ErrorContext(bg, "password reset request", "err", err)
		}
	}()
	return nil
}

func (m *MailService) sendReset(ctx context.Context, login, ip, lang string) error {
	u, err := m.store.GetUserByLogin(ctx, login)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find the account to reset: %w", err)
	}
	to := cmp.Or(u.RecoveryEmail, u.Email)
	if u.System || u.Blocked || to == "" {
		return nil
	}
	now := m.now()
	if !m.limits.allow("u:"+u.ID, resetMailsPerAccount, now) {
		m.log.InfoContext(ctx, "password reset mail not sent: the account had enough this hour", "user_id", u.ID)
		return nil
	}
	lang = cmp.Or(u.Locale, lang)
	data := resetMailData{Common: m.mailCommon(), Name: cmp.Or(u.GivenName, u.Name, u.Username), Username: u.Username}
	if u.Source != "" {
		data.Directory = m.sourceName(u.Source)
		msg, err := m.outboxMail(to, "password_elsewhere", lang, data, now)
		if err != nil {
			return err
		}
		if err := m.store.EnqueueOutbox(ctx, msg); err != nil {
			return fmt.Errorf("queue the password note for %q: %w", u.ID, err)
		}
	} else {
		secret := NewSecret()
		data.Link = strings.TrimSuffix(m.policy().Issuer, "/") + PasswordResetPath + "?token=" + url.QueryEscape(secret)
		msg, err := m.outboxMail(to, "password_reset", lang, data, now)
		if err != nil {
			return err
		}
		tok := storage.OneTimeToken{Hash: HashSecret(secret), Purpose: purposeReset, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(PasswordResetTTL)}
		if err := m.store.CreateOneTimeToken(ctx, tok, msg); err != nil {
			return fmt.Errorf("store the password reset link of %q: %w", u.ID, err)
		}
	}
	m.wakeOutbox()
	m.audit(ctx, Actor{Kind: ActorUser, IP: ip}, storage.AuditEvent{Type: EventPasswordResetRequested, TargetUserID: u.ID, IP: ip})
	return nil
}

// EventPasswordResetRequested: someone asked for a user's password-reset
// mail (never the link).
const EventPasswordResetRequested = "user.password_reset_requested"

// resetMailData is what the password_reset and password_elsewhere
// templates show.
type resetMailData struct {
	mail.Common
	Name, Username string
	Link           string // password_reset
	Directory      string // password_elsewhere: who keeps the password
}

func (m *MailService) mailCommon() mail.Common {
	host := m.policy().Issuer
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	return mail.Common{Product: "Keyport", Host: host}
}

// outboxMail renders template name for to and seals it into an outbox
// message, whose ID is also the mail's Message-ID.
func (m *MailService) outboxMail(to, name, lang string, data any, now time.Time) (storage.OutboxMessage, error) {
	msg, err := m.templates.Render(name, lang, data)
	if err != nil {
		return storage.OutboxMessage{}, fmt.Errorf("render mail %s: %w", name, err)
	}
	id := newOrderedID(now)
	msg.To, msg.ID = to, id
	raw, err := json.Marshal(msg)
	if err != nil {
		return storage.OutboxMessage{}, fmt.Errorf("encode mail %s: %w", name, err)
	}
	return storage.OutboxMessage{ID: id, Kind: OutboxMail, Payload: m.sealer.Seal(raw, mailSealPurpose), CreatedAt: now}, nil
}

// OpenMail reads an outbox mail message sealed by sealer: what the mail
// deliverer sends.
func OpenMail(sealer Sealer, payload []byte) (mail.Message, error) {
	raw, err := sealer.Open(payload, mailSealPurpose)
	if err != nil {
		return mail.Message{}, fmt.Errorf("open outbox mail: %w", err)
	}
	var msg mail.Message
	if err := json.Unmarshal(raw, &msg); err != nil {
		return mail.Message{}, fmt.Errorf("decode outbox mail: %w", err)
	}
	return msg, nil
}

// hourlyLimits counts events per key in fixed one-hour windows, in
// memory: enough to keep floods from becoming mail (a restart forgets the
// counts, which lets through at most one more hour's worth).
type hourlyLimits struct {
	mu     sync.Mutex
	counts map[string]hourlyCount
}

type hourlyCount struct {
	start time.Time
	n     int
}

func newHourlyLimits() *hourlyLimits { return &hourlyLimits{counts: map[string]hourlyCount{}} }

// left tells how many more events of key limit allows now, counting none.
func (l *hourlyLimits) left(key string, limit int, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts[key]
	if now.Sub(c.start) >= time.Hour {
		return limit
	}
	return max(limit-c.n, 0)
}

// allow counts one event of key and tells whether it is within limit.
func (l *hourlyLimits) allow(key string, limit int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts[key]
	if now.Sub(c.start) >= time.Hour {
		c = hourlyCount{start: now}
	}
	if c.n >= limit {
		return false
	}
	if _, known := l.counts[key]; !known && len(l.counts) >= mailLimitKeys {
		for k, v := range l.counts {
			if now.Sub(v.start) >= time.Hour {
				delete(l.counts, k)
			}
		}
		if len(l.counts) >= mailLimitKeys {
			return false // a flood of keys: refuse rather than grow
		}
	}
	c.n++
	l.counts[key] = c
	return true
}
