package account

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keyport/keyport/storage"
)

// Email verification by mail: a link proves the person reads the address.
// It confirms the account's current address (verification), or a new
// address before it replaces the old one (a change; the old address is
// told). Links are one-time tokens whose Data is the address they prove,
// valid EmailLinkTTL, and opened by a POST from the page the link shows,
// so a mail scanner that follows links spends nothing.
const (
	purposeVerifyEmail = "email_verify"
	purposeChangeEmail = "email_change"
	// purposeChangeRecovery confirms a new recovery address.
	purposeChangeRecovery = "recovery_email_change"
	// EmailLinkTTL is how long a verification or change link works.
	EmailLinkTTL = 24 * time.Hour
	// VerifyEmailPath is the portal's page for both links.
	VerifyEmailPath = "/verify-email"
	// verifyMailsPerAccount bounds the verification and change mails of
	// one account per hour.
	verifyMailsPerAccount = 5
)

// Events of the email flows.
const (
	EventEmailVerificationSent = "user.email_verification_sent"
	EventEmailChangeRequested  = "user.email_change_requested"
	EventEmailConfirmed        = "user.email_confirmed"
	// EventRecoveryEmailConfirmed: a new recovery address took effect.
	EventRecoveryEmailConfirmed = "user.recovery_email_confirmed"
)

var (
	errEmailLink     = Errorf(NotFound, "This link is invalid, expired or already used. Ask for a new one on your profile page.")
	errTooManyMails  = Errorf(RateLimited, "Too many emails were sent to this account in the last hour. Please try again later.")
	errEmailMismatch = Errorf(Conflict, "This link is for an address the account no longer has. Ask for a new one on your profile page.")
	errEmailStale    = Errorf(Conflict, "The account's email address changed since this link was sent. Ask for a new one on your profile page.")
	errRecoveryStale = Errorf(Conflict, "The account's recovery email address changed since this link was sent. Ask for a new one on your profile page.")
	// errChangeVoided: the password changed after the change was asked
	// for, which is what the notice tells an owner who did not ask to do.
	errChangeVoided = Errorf(Conflict, "The account's password changed since this link was sent, which cancels the change. Ask for a new one on your profile page.")
)

// emailMailData is what the verify_email and email_change_notice
// templates show.
type emailMailData struct {
	resetMailData
	Address string // the address to confirm, or the new one (notice)
	// Recovery: the address is (or was) the recovery address, where
	// password resets go, not the email.
	Recovery bool
	// Changed: the notice's change took effect already (an address the
	// account verified before needs no link), not one waiting for its link.
	Changed bool
}

// CanVerify tells whether u's email can be verified by mail now: mail is
// on, the address is not verified, and no directory owns it.
func (m *MailService) CanVerify(u storage.User) bool {
	return m.Enabled() && !u.EmailVerified && u.Email != "" &&
		!(u.Source != "" && slices.Contains(m.users.ownedFields(u.Source), "email"))
}

// SendVerification mails a link to u's current address that marks it
// verified. Refused when mail is off, the address is verified already or
// comes from a directory, or the account had verifyMailsPerAccount mails
// this hour.
func (m *MailService) SendVerification(ctx context.Context, u storage.User, lang string) error {
	if !m.Enabled() {
		return errMailOff
	}
	if u.EmailVerified || u.Email == "" {
		return Errorf(Conflict, "Your email address is verified already.")
	}
	if u.Source != "" && slices.Contains(m.users.ownedFields(u.Source), "email") {
		return Errorf(Forbidden, "Your email address comes from %s, which says whether it is verified.", m.sourceName(u.Source))
	}
	return m.sendEmailLink(ctx, u, purposeVerifyEmail, u.Email, lang)
}

// UpdateProfile is UserService.UpdateProfile for a person at their profile
// page or /api/v1/me. With mail on, a new email address or a new recovery
// address is not taken at once: the other changes are saved, and the
// address replaces the old one only when the person opens the link
// mailed to it. The account's addresses are told (the old one of a
// change, and for a new recovery address also the email, since the
// recovery address is where password resets go). pending is the first
// address that waits for its link. An address the account had verified
// before changes at once, as without mail; a recovery address removed
// goes at once, and its old address is told.
func (m *MailService) UpdateProfile(ctx context.Context, userID string, changes map[string]string, lang string) (u storage.User, pending string, err error) {
	_, email := changes["email"]
	_, recovery := changes["recovery_email"]
	if !m.Enabled() || (!email && !recovery) {
		u, err = m.users.UpdateProfile(ctx, userID, changes)
		return u, "", err
	}
	cur, err := m.users.getUser(ctx, userID)
	if err != nil {
		return storage.User{}, "", err
	}
	links, err := m.addressLinks(ctx, cur, changes)
	if err != nil {
		return storage.User{}, "", err
	}
	// An address replaced at once sends notices (replacedAddressNotices),
	// which count as one mail of the hour's, as a link does.
	atOnce := replacedAtOnce(cur, changes, links)
	need := len(links)
	if atOnce != "" {
		need++
	}
	// Refused before anything is saved: a change that cannot send its
	// link or its notices saves nothing, like any other refused change.
	if need > 0 && m.limits.left("v:"+cur.ID, verifyMailsPerAccount, m.now()) < need {
		field := atOnce
		if len(links) > 0 {
			field = links[0].field
		}
		return storage.User{}, "", &Error{Code: RateLimited, Field: field, Message: ErrorMessage(errTooManyMails)}
	}
	rest := maps.Clone(changes)
	for _, l := range links {
		delete(rest, l.field)
	}
	if u, err = m.users.UpdateProfile(ctx, userID, rest); err != nil {
		return storage.User{}, "", err
	}
	if atOnce != "" && !(strings.EqualFold(cur.Email, u.Email) && strings.EqualFold(cur.RecoveryEmail, u.RecoveryEmail)) {
		m.limits.allow("v:"+cur.ID, verifyMailsPerAccount, m.now())
		m.replacedAddressNotices(ctx, cur, u, lang)
	}
	for _, l := range links {
		if err := m.sendEmailLink(ctx, u, l.purpose, l.addr, lang); err != nil {
			return storage.User{}, "", err
		}
	}
	if len(links) > 0 {
		pending = links[0].addr
	}
	return u, pending, nil
}

// replacedAtOnce is the field ("email" or "recovery_email") of an
// address that changes replaces without a link (one the account verified
// before, or a recovery address removed), or "" when there is none.
func replacedAtOnce(cur storage.User, changes map[string]string, links []addressLink) string {
	for _, f := range []struct{ field, now string }{{"email", cur.Email}, {"recovery_email", cur.RecoveryEmail}} {
		addr, ok := changes[f.field]
		if !ok || strings.EqualFold(strings.TrimSpace(addr), f.now) ||
			slices.ContainsFunc(links, func(l addressLink) bool { return l.field == f.field }) {
			continue
		}
		return f.field
	}
	return ""
}

// addressLink is an address change that waits for its link.
type addressLink struct{ field, purpose, addr string }

// addressLinks checks the address changes in changes and returns those
// that need a link first, refusing what the change itself would refuse.
func (m *MailService) addressLinks(ctx context.Context, cur storage.User, changes map[string]string) ([]addressLink, error) {
	known := func(addr string) bool {
		return (cur.EmailVerified && strings.EqualFold(addr, cur.Email)) || slices.Contains(cur.VerifiedEmails, strings.ToLower(addr))
	}
	var links []addressLink
	if addr, ok := changes["email"]; ok {
		addr = strings.TrimSpace(addr)
		if !strings.EqualFold(addr, cur.Email) && !known(addr) {
			if err := m.users.CheckChange(cur, "email", addr); err != nil {
				return nil, err
			}
			if err := validateEmail(addr); err != nil {
				var e *Error
				if errors.As(err, &e) {
					return nil, inField("email", e)
				}
				return nil, &Error{Code: Invalid, Field: "email", Message: ErrorMessage(err)}
			}
			if other, err := m.store.GetUserByLogin(ctx, addr); err == nil && other.ID != cur.ID {
				return nil, &Error{Code: Conflict, Field: "email", Message: "This email address belongs to another account."}
			}
			links = append(links, addressLink{"email", purposeChangeEmail, addr})
		}
	}
	if addr, ok := changes["recovery_email"]; ok {
		addr = strings.TrimSpace(addr)
		if addr != "" && !strings.EqualFold(addr, cur.RecoveryEmail) && !known(addr) {
			if err := m.users.CheckChange(cur, "recovery_email", addr); err != nil {
				return nil, err
			}
			if err := validateEmail(addr); err != nil {
				return nil, FieldErrorf("recovery_email", "Enter a valid recovery email address, or leave it empty to use your primary email.")
			}
			links = append(links, addressLink{"recovery_email", purposeChangeRecovery, addr})
		}
	}
	return links, nil
}

// replacedAddressNotices tells the addresses that a saved change
// replaced at once: a recovery address removed (resets go to the email
// now), or an address the account verified before (taken without a link)
// in the place of the email or the recovery address. Whoever made the
// change may hold only the session, and may have verified their own
// address through an earlier change they then undid, so the owner's
// addresses hear of it as they do of a change that waits for its link:
// the one replaced and, for the recovery address, the email too. Their
// own commit after the change: a crash between the two loses these
// notices.
func (m *MailService) replacedAddressNotices(ctx context.Context, cur, u storage.User, lang string) {
	base := resetMailData{Common: m.mailCommon(), Name: cmp.Or(u.GivenName, u.Name, u.Username), Username: u.Username}
	lang = cmp.Or(u.Locale, lang)
	var msgs []storage.OutboxMessage
	tell := func(data emailMailData, to ...string) {
		for i, addr := range to {
			if addr == "" || strings.EqualFold(addr, data.Address) ||
				slices.ContainsFunc(to[:i], func(t string) bool { return strings.EqualFold(t, addr) }) {
				continue
			}
			msg, err := m.outboxMail(addr, "email_change_notice", lang, data, m.now())
			if err != nil {
				m.log.ErrorContext(ctx, "tell a replaced address", "user_id", u.ID, "err", err)
				continue
			}
			msgs = append(msgs, msg)
		}
	}
	switch {
	case strings.EqualFold(cur.RecoveryEmail, u.RecoveryEmail):
	case u.RecoveryEmail == "":
		tell(emailMailData{resetMailData: base, Recovery: true}, cur.RecoveryEmail)
	default:
		tell(emailMailData{resetMailData: base, Recovery: true, Address: u.RecoveryEmail, Changed: true}, cur.RecoveryEmail, cur.Email)
	}
	if !strings.EqualFold(cur.Email, u.Email) {
		tell(emailMailData{resetMailData: base, Address: u.Email, Changed: true}, cur.Email)
	}
	if len(msgs) == 0 {
		return
	}
	if err := m.store.EnqueueOutbox(ctx, msgs...); err != nil {
		m.log.ErrorContext(ctx, "tell the replaced addresses of a change", "user_id", u.ID, "err", err)
		return
	}
	m.wakeOutbox()
}

// sendEmailLink stores a link of purpose proving addr for u, with its
// mail (and, for a change, the notice to the old address) in the same
// transaction.
func (m *MailService) sendEmailLink(ctx context.Context, u storage.User, purpose, addr, lang string) error {
	now := m.now()
	if !m.limits.allow("v:"+u.ID, verifyMailsPerAccount, now) {
		return errTooManyMails
	}
	lang = cmp.Or(u.Locale, lang)
	secret := NewSecret()
	data := emailMailData{resetMailData: resetMailData{Common: m.mailCommon(), Name: cmp.Or(u.GivenName, u.Name, u.Username), Username: u.Username,
		Link: strings.TrimSuffix(m.policy().Issuer, "/") + VerifyEmailPath + "?token=" + url.QueryEscape(secret)}, Address: addr,
		Recovery: purpose == purposeChangeRecovery}
	name := "verify_email"
	if purpose != purposeVerifyEmail {
		name = "confirm_email_change"
	}
	msg, err := m.outboxMail(addr, name, lang, data, now)
	if err != nil {
		return err
	}
	msgs := []storage.OutboxMessage{msg}
	// The addresses the account has now are told of a change: the one it
	// replaces and, for the recovery address, the email too.
	var told []string
	switch purpose {
	case purposeChangeEmail:
		told = []string{u.Email}
	case purposeChangeRecovery:
		told = []string{u.Email, u.RecoveryEmail}
	}
	data.Link = ""
	for i, to := range told {
		if to == "" || slices.ContainsFunc(told[:i], func(t string) bool { return strings.EqualFold(t, to) }) {
			continue
		}
		notice, err := m.outboxMail(to, "email_change_notice", lang, data, now)
		if err != nil {
			return err
		}
		msgs = append(msgs, notice)
	}
	// A change link also holds the address it changes from: once the
	// account's address is another (through another link, say), the link
	// is stale and changes nothing. And only the newest link of each kind
	// works (OnePerUser): asking again makes the earlier link void.
	tokData := strings.ToLower(addr)
	switch purpose {
	case purposeChangeEmail:
		tokData += changeFromSep + strings.ToLower(u.Email)
	case purposeChangeRecovery:
		tokData += changeFromSep + strings.ToLower(u.RecoveryEmail)
	}
	tok := storage.OneTimeToken{Hash: HashSecret(secret), Purpose: purpose, UserID: u.ID, Data: []byte(tokData), CreatedAt: now, ExpiresAt: now.Add(EmailLinkTTL),
		OnePerUser: true}
	if err := m.store.CreateOneTimeToken(ctx, tok, msgs...); err != nil {
		return fmt.Errorf("store the %s link of %q: %w", purpose, u.ID, err)
	}
	m.wakeOutbox()
	typ, field := EventEmailVerificationSent, "email"
	switch purpose {
	case purposeChangeEmail:
		typ = EventEmailChangeRequested
	case purposeChangeRecovery:
		typ, field = EventEmailChangeRequested, "recovery_email"
	}
	m.audit(ctx, userActor(u.ID), storage.AuditEvent{Type: typ, TargetUserID: u.ID, Changes: []storage.AuditChange{{Field: field, After: addr}}})
	return nil
}

// EmailLink is what a verification or change link proves, for the page
// that asks to confirm it.
type EmailLink struct {
	Username string
	Address  string
	Change   bool // a new address, not the current one
	Recovery bool // the new recovery address
}

// CheckEmailLink tells what a link proves without spending it. Unknown
// secrets count against ip's throttle, as other links do.
func (m *MailService) CheckEmailLink(ctx context.Context, secret, ip string) (EmailLink, error) {
	tok, u, err := m.peekEmailLink(ctx, secret, ip)
	if err != nil {
		return EmailLink{}, err
	}
	addr, _ := emailLinkData(tok)
	return EmailLink{Username: u.Username, Address: addr, Change: tok.Purpose != purposeVerifyEmail, Recovery: tok.Purpose == purposeChangeRecovery}, nil
}

// ConfirmEmail spends a link: the address it proves becomes the account's
// verified email (replacing the old one for a change), or its recovery
// address. A verification link for an address the account no longer has
// is refused; a change to an address another account took meanwhile is a
// Conflict. link tells what was confirmed.
func (m *MailService) ConfirmEmail(ctx context.Context, secret, ip, userAgent string) (u storage.User, link EmailLink, err error) {
	tok, _, err := m.peekEmailLink(ctx, secret, ip)
	if err != nil {
		return storage.User{}, EmailLink{}, err
	}
	tok, err = m.store.ConsumeOneTimeToken(ctx, tok.Hash, tok.Purpose)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, EmailLink{}, errEmailLink
	}
	if err != nil {
		return storage.User{}, EmailLink{}, fmt.Errorf("spend the email link: %w", err)
	}
	addr, from := emailLinkData(tok)
	var before string
	u, err = m.users.store.UpdateUser(ctx, tok.UserID, func(u storage.User) (storage.User, error) {
		// A change asked for before the password last changed is void:
		// the notice to the account's addresses tells an owner who did
		// not ask for it to change the password, and the link must not
		// outlive that (it needs no session, only the new mailbox).
		if tok.Purpose != purposeVerifyEmail && u.PasswordChangedAt.After(tok.CreatedAt) {
			return u, errChangeVoided
		}
		if err := CheckActive(u); err != nil { // blocked since the page
			return u, err
		}
		switch tok.Purpose {
		case purposeChangeRecovery:
			before = u.RecoveryEmail
			if !strings.EqualFold(u.RecoveryEmail, from) {
				return u, errRecoveryStale
			}
			if err := m.users.CheckChange(u, "recovery_email", addr); err != nil {
				return u, err
			}
			u.RecoveryEmail = addr
			u.UpdatedAt = m.now()
			return u, nil
		case purposeChangeEmail:
			before = u.Email
			if !strings.EqualFold(u.Email, from) {
				return u, errEmailStale
			}
			if err := m.users.CheckChange(u, "email", addr); err != nil {
				return u, err
			}
			u.Email = addr
		default:
			before = u.Email
			if !strings.EqualFold(u.Email, addr) {
				return u, errEmailMismatch
			}
		}
		u.EmailVerified = true
		rememberVerifiedEmail(&u)
		u.UpdatedAt = m.now()
		return u, nil
	})
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return storage.User{}, EmailLink{}, ae
	case errors.Is(err, storage.ErrConflict):
		return storage.User{}, EmailLink{}, &Error{Code: Conflict, Field: "email", Message: "This email address belongs to another account.", Err: err}
	case errors.Is(err, storage.ErrNotFound):
		return storage.User{}, EmailLink{}, errEmailLink
	case err != nil:
		return storage.User{}, EmailLink{}, fmt.Errorf("confirm the email of %q: %w", tok.UserID, err)
	}
	actor := Actor{Kind: ActorUser, UserID: u.ID, IP: ip, UserAgent: userAgent}
	if tok.Purpose == purposeChangeRecovery {
		m.audit(ctx, actor, storage.AuditEvent{Type: EventRecoveryEmailConfirmed, TargetUserID: u.ID,
			Changes: []storage.AuditChange{{Field: "recovery_email", Before: before, After: u.RecoveryEmail}}})
		return u, EmailLink{Username: u.Username, Address: u.RecoveryEmail, Change: true, Recovery: true}, nil
	}
	m.audit(ctx, actor, storage.AuditEvent{Type: EventEmailConfirmed, TargetUserID: u.ID,
		Changes: []storage.AuditChange{{Field: "email", Before: before, After: u.Email}, {Field: "email_verified", After: "true"}}})
	return u, EmailLink{Username: u.Username, Address: u.Email, Change: tok.Purpose == purposeChangeEmail}, nil
}

func (m *MailService) peekEmailLink(ctx context.Context, secret, ip string) (storage.OneTimeToken, storage.User, error) {
	if len(secret) == SecretLen {
		hash := HashSecret(secret)
		for _, purpose := range []string{purposeVerifyEmail, purposeChangeEmail, purposeChangeRecovery} {
			tok, err := m.store.PeekOneTimeToken(ctx, hash, purpose)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return storage.OneTimeToken{}, storage.User{}, fmt.Errorf("find email link: %w", err)
			}
			u, err := m.users.getUser(ctx, tok.UserID)
			if err != nil {
				return storage.OneTimeToken{}, storage.User{}, errEmailLink
			}
			// A blocked account's links wait for it to be unblocked:
			// blocking is what an administrator does to an account
			// taken over, and these links need no session.
			if err := CheckActive(u); err != nil {
				return storage.OneTimeToken{}, storage.User{}, err
			}
			return tok, u, nil
		}
	}
	res, err := m.limiter.Secret(ctx, ip)
	if err != nil {
		return storage.OneTimeToken{}, storage.User{}, m.refused(ctx, err, msgTooManyTokens, "email_link", "", ip)
	}
	if _, err := res.Fail(ctx); err != nil {
		m.log.ErrorContext(ctx, "count failed link", "err", err)
	}
	m.logFailure(ctx, "email_link", "", ip, "unknown, expired or used link")
	return storage.OneTimeToken{}, storage.User{}, errEmailLink
}

// changeFromSep separates, in a change link's Data, the new address from
// the one it replaces (an email address holds no newline).
const changeFromSep = "\n"

// emailLinkData is the address a link proves and, for a change, the
// address it changes from.
func emailLinkData(tok storage.OneTimeToken) (addr, from string) {
	addr, from, _ = strings.Cut(string(tok.Data), changeFromSep)
	return addr, from
}
