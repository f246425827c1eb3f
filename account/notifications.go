package account

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/storage"
)

// Security notifications: a user is mailed when something happens to
// their account that they should notice if it was not them: a sign-in
// from a new device, a password change, a second factor added or
// removed, a new API token or app password, their account blocked, and
// an API token about to expire. Each kind can be turned off (Policy.Notify,
// the settings page).
//
// All but the expiry warning are a Reactor on the audit events, so the
// mail is committed with the event and never waits for SMTP. The mail
// goes to the recovery email, else the email, in the user's language.

// SecurityPath is the portal page a notification points to, where the
// user can change their password and end sessions.
const SecurityPath = "/security"

// OwnWebhooksPath is the portal's page of a person's own webhooks.
const OwnWebhooksPath = "/security/webhooks"

// Bounds of the notifications' work.
const (
	// newDeviceHistory is how many of a user's newest sign-in attempts a
	// sign-in is compared with to tell a new device: one bounded read.
	newDeviceHistory = 50
	// deviceUserAgentBytes is how much of a user agent tells devices apart
	// (and is shown in a mail): stores cut long ones.
	deviceUserAgentBytes = 200
	// TokenExpiryWarning is how long before an API token expires its owner
	// is told.
	TokenExpiryWarning = 7 * 24 * time.Hour
	// maxExpiryWarnings bounds the warnings of one run of the daily job;
	// the rest wait for the next run.
	maxExpiryWarnings = 1000
)

// notification is a kind of mail: its template and its switch.
type notification struct {
	template string
	on       func(Notify) bool
}

var (
	passwordNote     = notification{"security_password_changed", func(n Notify) bool { return n.PasswordChanged }}
	secondFactorNote = notification{"security_second_factor", func(n Notify) bool { return n.SecondFactor }}
	credentialNote   = notification{"security_credential_created", func(n Notify) bool { return n.Credentials }}
	blockedNote      = notification{"security_account_blocked", func(n Notify) bool { return n.Blocked }}
	newDeviceNote    = notification{"security_new_device", func(n Notify) bool { return n.NewDevice }}
	tokenExpiryNote  = notification{"security_token_expiring", func(n Notify) bool { return n.TokenExpiry }}
	// A user's own webhook turned off after failures: not a security
	// matter, but nobody else can turn it back on, so it cannot be off.
	webhookOffNote = notification{"webhook_disabled", func(Notify) bool { return true }}
)

// notifications maps the audit events a user is told of to their mail.
// The templates word each event by its type (.Event).
var notifications = map[string]notification{
	EventPasswordChanged:          passwordNote,
	"user.password_reset":         passwordNote, // with a reset link
	"user.password_set":           passwordNote, // by an administrator
	EventTOTPEnabled:              secondFactorNote,
	EventTOTPDisabled:             secondFactorNote,
	EventPasskeyAdded:             secondFactorNote,
	EventPasskeyRemoved:           secondFactorNote,
	EventRecoveryCodesRegenerated: secondFactorNote,
	"user.second_factors_reset":   secondFactorNote, // by an administrator
	EventAPITokenCreated:          credentialNote,
	EventAppPasswordCreated:       credentialNote,
	EventUserBlocked:              blockedNote,
	EventWebhookDisabled:          webhookOffNote,
}

// notifyMailData is what the security_* templates show.
type notifyMailData struct {
	mail.Common
	Name, Username string
	// Event is the audit event's type: the templates choose their words
	// by it.
	Event string
	// Time is when it happened, in UTC.
	Time string
	// IP and Browser are where it was done from, when known.
	IP, Browser string
	// ByAdmin: an administrator, the command line or a directory acted,
	// not the user.
	ByAdmin bool
	// Credential names the token, app password or passkey concerned.
	Credential string
	// Expires is when the token expires (token_expiring).
	Expires string
	// Link is the portal's security page.
	Link string
	// Reason is the event's reason (webhook_disabled: why it went off).
	Reason string
}

// browserSignInKey marks a context whose sign-in starts a browser
// session: only those are interactive sign-ins a new device is told from.
type browserSignInKey struct{}

func withBrowserSignIn(ctx context.Context) context.Context {
	return context.WithValue(ctx, browserSignInKey{}, true)
}

func isBrowserSignIn(ctx context.Context) bool {
	b, _ := ctx.Value(browserSignInKey{}).(bool)
	return b
}

// react is the notifications' Reactor. A notification that cannot be
// made is logged and left out: the change it tells of stands.
func (m *MailService) react(ctx context.Context, e storage.AuditEvent) []storage.OutboxMessage {
	if e.TargetUserID == "" {
		return nil
	}
	notify := m.policy().Notify
	if e.Type == EventSignInSucceeded {
		if !notify.NewDevice || !isBrowserSignIn(ctx) {
			return nil
		}
		return m.newDeviceMail(ctx, e)
	}
	n, ok := notifications[e.Type]
	if !ok || !n.on(notify) {
		return nil
	}
	u, err := m.store.GetUser(ctx, e.TargetUserID)
	if err != nil {
		m.log.ErrorContext(ctx, "security notification: load the user", "type", e.Type, "user_id", e.TargetUserID, "err", err)
		return nil
	}
	if u.Blocked && e.Type != EventUserBlocked {
		return nil
	}
	return m.notificationMail(ctx, u, n, e)
}

// newDeviceMail tells of a browser sign-in whose device (user agent and
// network) is not among the user's recent successful sign-ins. The
// current one is not among them yet: reactors run before the sign-in is
// written. An account's first sign-in has nothing to be new against.
func (m *MailService) newDeviceMail(ctx context.Context, e storage.AuditEvent) []storage.OutboxMessage {
	history, err := m.store.ListLoginAttempts(ctx, e.TargetUserID, newDeviceHistory)
	if err != nil {
		m.log.ErrorContext(ctx, "security notification: read the sign-in history", "user_id", e.TargetUserID, "err", err)
		return nil
	}
	dev := deviceOf(e.IP, e.UserAgent)
	for _, a := range history {
		if a.Success && deviceOf(a.IP, a.UserAgent) == dev {
			return nil
		}
	}
	u, err := m.store.GetUser(ctx, e.TargetUserID)
	if err != nil {
		m.log.ErrorContext(ctx, "security notification: load the user", "type", e.Type, "user_id", e.TargetUserID, "err", err)
		return nil
	}
	// LoginsCount is read before this sign-in counts: 0 is the first.
	// (History alone cannot tell: failures may have crowded out older
	// successes.)
	if u.LoginsCount == 0 {
		return nil
	}
	return m.notificationMail(ctx, u, newDeviceNote, e)
}

// device is what tells a user's devices apart: the browser's user agent
// and its network (an IPv4 /24 or an IPv6 /64, so a new address from the
// same provider's pool is the same device).
type device struct{ network, userAgent string }

func deviceOf(ip, userAgent string) device {
	network := ip
	if a, err := netip.ParseAddr(ip); err == nil {
		a = a.Unmap()
		bits := 64
		if a.Is4() {
			bits = 24
		}
		if p, err := a.Prefix(bits); err == nil {
			network = p.String()
		}
	}
	return device{network: network, userAgent: cut(userAgent, deviceUserAgentBytes)}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// notificationMail renders n for u about e; none when u has no address.
func (m *MailService) notificationMail(ctx context.Context, u storage.User, n notification, e storage.AuditEvent) []storage.OutboxMessage {
	to := cmp.Or(u.RecoveryEmail, u.Email)
	if to == "" {
		return nil
	}
	data := m.notifyData(u, e)
	msg, err := m.outboxMail(to, n.template, u.Locale, data, m.now())
	if err != nil {
		m.log.ErrorContext(ctx, "security notification", "type", e.Type, "user_id", u.ID, "err", err)
		return nil
	}
	return []storage.OutboxMessage{msg}
}

func (m *MailService) notifyData(u storage.User, e storage.AuditEvent) notifyMailData {
	d := notifyMailData{
		Common: m.mailCommon(), Name: cmp.Or(u.GivenName, u.Name, u.Username), Username: u.Username,
		Event: e.Type, Time: mailTime(e.Time), IP: e.IP, Browser: cut(e.UserAgent, deviceUserAgentBytes),
		ByAdmin: e.ActorKind != ActorUser || (e.ActorID != "" && e.ActorID != u.ID),
		Link:    strings.TrimSuffix(m.policy().Issuer, "/") + SecurityPath,
		Reason:  e.Reason,
	}
	if e.Type == EventWebhookDisabled && e.TargetID != "" {
		// The hook's own page, where its owner turns it on again (the
		// security page does not list webhooks).
		d.Link = strings.TrimSuffix(m.policy().Issuer, "/") + OwnWebhooksPath + "/" + url.PathEscape(e.TargetID)
	}
	if d.ByAdmin {
		// Where an administrator works from is not the user's business.
		d.IP, d.Browser = "", ""
	}
	for _, c := range e.Changes {
		if c.Field == "name" {
			d.Credential = c.After
		}
	}
	return d
}

func mailTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// errWarnedAlready: another run warned of the token meanwhile.
var errWarnedAlready = errors.New("expiry warned already")

// WarnExpiringTokens mails the owner of each API token that expires
// within TokenExpiryWarning, once per token: the mail is committed in the
// same write that notes the warning (Credential.ExpiryWarnedAt), so runs
// that overlap or repeat warn once. cmd/keyport runs it once a day. It
// returns how many warnings it queued.
func (m *MailService) WarnExpiringTokens(ctx context.Context) (int, error) {
	if !m.Enabled() || !tokenExpiryNote.on(m.policy().Notify) {
		return 0, nil
	}
	now := m.now()
	tokens, err := m.store.ListExpiringTokens(ctx, now, now.Add(TokenExpiryWarning), maxExpiryWarnings)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, c := range tokens {
		u, err := m.store.GetUser(ctx, c.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return sent, fmt.Errorf("load the owner of API token %q: %w", c.ID, err)
		}
		to := cmp.Or(u.RecoveryEmail, u.Email)
		if to == "" || u.Blocked {
			continue // nobody to tell; a later run looks again
		}
		data := m.notifyData(u, storage.AuditEvent{Type: "api_token.expiring", Time: now, ActorKind: ActorSystem})
		data.Credential, data.Expires, data.ByAdmin = c.Name, mailTime(c.ValidUntil), false
		msg, err := m.outboxMail(to, tokenExpiryNote.template, u.Locale, data, now)
		if err != nil {
			return sent, err
		}
		_, err = m.store.UpdateCredential(ctx, c.UserID, c.ID, func(c storage.Credential) (storage.Credential, error) {
			if !c.ExpiryWarnedAt.IsZero() {
				return c, errWarnedAlready
			}
			c.ExpiryWarnedAt = now
			return c, nil
		}, msg)
		switch {
		case errors.Is(err, errWarnedAlready), errors.Is(err, storage.ErrNotFound):
			continue
		case err != nil:
			return sent, fmt.Errorf("warn of API token %q: %w", c.ID, err)
		}
		sent++
	}
	if sent > 0 {
		m.wakeOutbox()
	}
	return sent, nil
}
