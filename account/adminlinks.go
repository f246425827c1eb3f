package account

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// The one-time links an administrator hands out: an invitation lets a new
// user set their first password, a reset link lets a user set a new one.
// Both are stored hashed (like the setup link), shown once, and spent on
// use.
const (
	purposeInvite = "invite"
	purposeReset  = "password_reset"
	// InvitationTTL is how long an invitation link works (Keycloak's
	// "execute actions" email: up to days; a week fits a new colleague).
	InvitationTTL = 7 * 24 * time.Hour
	// PasswordResetTTL is how long a password-reset link works.
	PasswordResetTTL = time.Hour
	// InvitationPath and PasswordResetPath are the portal's pages for the
	// links; the secret goes in the "token" query parameter.
	InvitationPath    = "/invite"
	PasswordResetPath = "/reset-password"
)

// Link is a one-time link, shown once: only its hash is stored.
type Link struct {
	URL       string // Issuer + path + "?token=" + Secret
	Secret    string
	ExpiresAt time.Time
	// MailedTo is the address the link was also mailed to ("" when mail
	// is off).
	MailedTo string
}

// invitationMailed marks an invitation token whose link went by mail:
// using it proves the address, which becomes verified. The token's Data is
// invitationMailed + ":" + the address (lower case), so an address changed
// since is not verified by a link it never received.
const invitationMailed = "mailed"

// AdminNewUser is a local account an administrator creates: with a
// password the administrator sets (Password), or with an invitation link
// (Invite) through which the person sets their own.
type AdminNewUser struct {
	Username      string   `json:"username"`
	Email         string   `json:"email"`
	Name          string   `json:"name,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Admin         bool     `json:"admin,omitempty"`
	Roles         []string `json:"roles,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Password      string   `json:"password,omitempty"`
	Invite        bool     `json:"invite,omitempty"`
	// System makes an account for a program (see storage.User.System):
	// neither a password nor an invitation; it acts through API tokens an
	// administrator issues (AdminService.CreateAPIToken).
	System bool `json:"system,omitempty"`
}

// CreateUser creates a local account. With Password, the password policy
// applies (Invalid, field "password"). With Invite, the account has no
// password yet and the returned Link (valid InvitationTTL) lets the person
// set one; otherwise the Link is zero. Exactly one of the two must be
// given, unless System, which takes neither. A taken username or email is
// a Conflict naming the field.
// Nothing is stored unless all of it is valid. Event: "user.created",
// listing the fields set (Reason: "password" or "invitation").
func (s *AdminService) CreateUser(ctx context.Context, actor Actor, n AdminNewUser) (storage.User, Link, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return storage.User{}, Link{}, err
	}
	n.Username, n.Email, n.Name = strings.TrimSpace(n.Username), strings.TrimSpace(n.Email), strings.TrimSpace(n.Name)
	if err := validateUsername(n.Username); err != nil {
		return storage.User{}, Link{}, err
	}
	if validateEmail(n.Email) != nil {
		return storage.User{}, Link{}, FieldErrorf("email", "Enter a valid email address.")
	}
	if utf8.RuneCountInString(n.Name) > maxNameRunes || strings.ContainsAny(n.Name, "\x00\r\n") || !utf8.ValidString(n.Name) {
		return storage.User{}, Link{}, FieldErrorf("name", "Name must be at most 200 characters.")
	}
	roles, err := validateNameList("roles", n.Roles)
	if err != nil {
		return storage.User{}, Link{}, err
	}
	groups, err := validateNameList("groups", n.Groups)
	if err != nil {
		return storage.User{}, Link{}, err
	}
	switch {
	case n.System && (n.Invite || n.Password != ""):
		return storage.User{}, Link{}, FieldErrorf("password", "A system account has no password and no invitation: give it API tokens.")
	case n.System:
	case n.Invite && n.Password != "":
		return storage.User{}, Link{}, FieldErrorf("password", "Set a password or send an invitation, not both.")
	case !n.Invite && n.Password == "":
		return storage.User{}, Link{}, FieldErrorf("password", "Set a password or send an invitation.")
	}
	if err := s.notTaken(ctx, "", "username", n.Username); err != nil {
		return storage.User{}, Link{}, err
	}
	if err := s.notTaken(ctx, "", "email", n.Email); err != nil {
		return storage.User{}, Link{}, err
	}
	now := s.now()
	u := storage.User{ID: NewID(), Username: n.Username, Email: n.Email, EmailVerified: n.EmailVerified, Name: n.Name,
		Admin: n.Admin, Roles: nilIfEmpty(roles), Groups: nilIfEmpty(groups), System: n.System, CreatedAt: now, UpdatedAt: now}
	rememberVerifiedEmail(&u)
	how := "invitation"
	switch {
	case n.System:
		how = "system"
	case !n.Invite:
		how = "password"
		if err := s.users.CheckPassword(ctx, n.Password, n.Username, n.Email, n.Name); err != nil {
			return storage.User{}, Link{}, passwordField(err)
		}
		if u.PasswordHash, err = s.hashPassword(ctx, n.Password); err != nil {
			return storage.User{}, Link{}, fmt.Errorf("hash the password of new user %q: %w", n.Username, err)
		}
		u.PasswordChangedAt = now
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.User{}, Link{}, nameTaken(err, "username")
		}
		return storage.User{}, Link{}, fmt.Errorf("create user %q: %w", u.Username, err)
	}
	var link Link
	if n.Invite {
		if link, err = s.newMailedLink(ctx, actor, purposeInvite, u, InvitationTTL, InvitationPath, "invitation"); err != nil {
			// An account nobody can reach is worth nothing: take it back.
			if derr := s.store.DeleteUser(ctx, u.ID, time.Time{}); derr != nil {
				s.log.ErrorContext(ctx, "remove the account whose invitation failed", "user_id", u.ID, "err", derr)
			}
			return storage.User{}, Link{}, err
		}
	}
	e := userEvent("user.created", u, diffUsers(storage.User{}, u)...)
	e.Reason = how
	s.audit(ctx, actor, fitAudit(e))
	s.log.InfoContext(ctx, "user created by an administrator", "user_id", u.ID, "how", how)
	return u, link, nil
}

// passwordField puts a password-policy refusal on the "password" field;
// a busy hash gate is nobody's input error and stays as it is.
func passwordField(err error) error {
	var e *Error
	if !errors.As(err, &e) || e.Code == Unavailable {
		return err
	}
	moved := *e
	moved.Field = "password"
	return &moved
}

// newLink stores a one-time link of purpose for userID, made by actor,
// and returns it.
func (s *AdminService) newLink(ctx context.Context, actor Actor, purpose, userID string, ttl time.Duration, path string) (Link, error) {
	return s.newMailedLink(ctx, actor, purpose, storage.User{ID: userID}, ttl, path, "")
}

// newMailedLink is newLink that, with mail on and a template given, also
// mails the link to u's email in the same transaction.
//
// A link a user made (an administrator, a system account) records them
// as its creator, and an outbox message due when it expires reports an
// unused link then (LinkExpired), so the creator's webhooks hear how the
// workflow ended either way.
func (s *AdminService) newMailedLink(ctx context.Context, actor Actor, purpose string, u storage.User, ttl time.Duration, path, template string) (Link, error) {
	secret := NewSecret()
	now := s.now()
	l := Link{Secret: secret, ExpiresAt: now.Add(ttl), URL: strings.TrimSuffix(s.policy().Issuer, "/") + path + "?token=" + secret}
	// One live link per user and purpose: a link made again (the first
	// was lost) voids the earlier, and the account's pending workflow can
	// be found (pendingInitiator).
	tok := storage.OneTimeToken{Hash: HashSecret(secret), Purpose: purpose, UserID: u.ID, CreatedAt: now, ExpiresAt: l.ExpiresAt, OnePerUser: true}
	var out []storage.OutboxMessage
	if actor.Kind == ActorUser && actor.UserID != "" {
		tok.CreatedBy = actor.UserID
		raw, err := json.Marshal(linkExpiry{Purpose: purpose, UserID: u.ID, Initiator: actor.UserID, CreatedAt: now, Hash: tok.Hash})
		if err != nil {
			return Link{}, fmt.Errorf("encode the expiry of a %s link: %w", purpose, err)
		}
		out = append(out, storage.OutboxMessage{ID: newOrderedID(now), Kind: OutboxLinkExpiry, Payload: raw, CreatedAt: now,
			NextAttemptAt: l.ExpiresAt.Add(time.Minute), Deadline: l.ExpiresAt.Add(storage.DefaultOutboxLifetime)})
	}
	if template != "" && s.mail.Enabled() && u.Email != "" {
		data := resetMailData{Common: s.mail.mailCommon(), Name: cmp.Or(u.GivenName, u.Name, u.Username), Username: u.Username, Link: l.URL}
		msg, err := s.mail.outboxMail(u.Email, template, cmp.Or(u.Locale, "en"), data, now)
		if err != nil {
			return Link{}, err
		}
		out, tok.Data, l.MailedTo = append(out, msg), []byte(invitationMailed+":"+strings.ToLower(u.Email)), u.Email
	}
	if err := s.store.CreateOneTimeToken(ctx, tok, out...); err != nil {
		return Link{}, fmt.Errorf("create %s link for %q: %w", purpose, u.ID, err)
	}
	if len(out) > 0 {
		s.wakeOutbox()
	}
	return l, nil
}

// PasswordResetLink makes a one-time link (valid PasswordResetTTL) through
// which user id sets a new password; using it ends their sessions. It is
// refused for accounts of a directory or upstream provider, which keeps
// their password. A new link voids the earlier one. Event:
// "user.password_reset_link_created" (never the link).
func (s *AdminService) PasswordResetLink(ctx context.Context, actor Actor, id string) (Link, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return Link{}, err
	}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return Link{}, err
	}
	if u.Source != "" || u.System {
		return Link{}, s.passwordElsewhere(u)
	}
	l, err := s.newLink(ctx, actor, purposeReset, id, PasswordResetTTL, PasswordResetPath)
	if err != nil {
		return Link{}, err
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: "user.password_reset_link_created", TargetUserID: id, Reason: "valid until " + l.ExpiresAt.UTC().Format(time.RFC3339)})
	return l, nil
}

func (s *AdminService) passwordElsewhere(u storage.User) error {
	if u.System {
		return Errorf(Forbidden, "%s is a system account: it has no password, only API tokens.", u.Username)
	}
	return Errorf(Forbidden, "The password of %s is kept by %s; reset it there.", u.Username, s.sourceName(u.Source))
}

var errLink = Errorf(NotFound, "This link is invalid, expired or already used. Ask your administrator for a new one.")

// CheckInvitation tells whether an invitation link works and for whom,
// for the page that asks for the password. Wrong secrets count against
// the caller's address (ip), like unknown API tokens.
func (s *AdminService) CheckInvitation(ctx context.Context, secret, ip string) (storage.User, error) {
	_, u, err := s.peekLink(ctx, purposeInvite, secret, ip)
	return u, err
}

// CheckPasswordResetLink is CheckInvitation for password-reset links.
func (s *AdminService) CheckPasswordResetLink(ctx context.Context, secret, ip string) (storage.User, error) {
	_, u, err := s.peekLink(ctx, purposeReset, secret, ip)
	return u, err
}

// RedeemInvitation sets the first password of an invited user through
// their link and spends it. The password is checked (Invalid, field
// "password") and hashed before the link is spent, so a typo does not
// burn it. Event: "user.invitation_accepted", by the user.
func (s *AdminService) RedeemInvitation(ctx context.Context, secret, password, ip, userAgent string) (storage.User, error) {
	return s.redeem(ctx, purposeInvite, secret, password, ip, userAgent)
}

// ResetPasswordWithLink sets a new password through a reset link, spends
// it, and ends every session and revokes every token of the user (as a
// password change does). Event: "user.password_reset", by the user.
func (s *AdminService) ResetPasswordWithLink(ctx context.Context, secret, password, ip, userAgent string) (storage.User, error) {
	return s.redeem(ctx, purposeReset, secret, password, ip, userAgent)
}

func (s *AdminService) redeem(ctx context.Context, purpose, secret, password, ip, userAgent string) (storage.User, error) {
	_, u, err := s.peekLink(ctx, purpose, secret, ip)
	if err != nil {
		return storage.User{}, err
	}
	if err := s.users.CheckPassword(ctx, password, u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname); err != nil {
		return storage.User{}, passwordField(err)
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return storage.User{}, fmt.Errorf("hash the new password of %q: %w", u.ID, err)
	}
	tok, err := s.store.ConsumeOneTimeToken(ctx, HashSecret(secret), purpose)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, errLink // spent meanwhile
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("spend the %s link: %w", purpose, err)
	}
	now := s.now()
	u, err = s.store.UpdateUser(ctx, tok.UserID, func(u storage.User) (storage.User, error) {
		if u.Source != "" || u.System {
			return u, s.passwordElsewhere(u)
		}
		if linkOutlived(tok, u) { // changed since the page was shown
			return u, errLink
		}
		if err := CheckActive(u); err != nil { // blocked since
			return u, err
		}
		u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, now, now
		// The invitation came by mail: opening it proves the address.
		if purpose == purposeInvite && string(tok.Data) == invitationMailed+":"+strings.ToLower(u.Email) && !u.EmailVerified {
			u.EmailVerified = true
			rememberVerifiedEmail(&u)
		}
		return u, nil
	})
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return storage.User{}, ae
	case errors.Is(err, storage.ErrNotFound):
		return storage.User{}, errLink
	case err != nil:
		return storage.User{}, fmt.Errorf("set password of %q: %w", tok.UserID, err)
	}
	self := Actor{Kind: ActorUser, UserID: u.ID, IP: ip, UserAgent: userAgent}
	e := storage.AuditEvent{Type: "user.invitation_accepted", TargetUserID: u.ID, Initiator: tok.CreatedBy, Changes: []storage.AuditChange{{Field: "password"}}}
	if purpose == purposeReset {
		out, err := s.signOut(ctx, u.ID)
		if err != nil {
			return storage.User{}, err
		}
		e.Type, e.Reason = "user.password_reset", out.reason()
	}
	s.audit(ctx, self, e)
	s.log.InfoContext(ctx, "password set through a one-time link", "user_id", u.ID, "purpose", purpose)
	return u, nil
}

// linkOutlived tells whether u's password was set after link tok was
// made, which voids the link: the owner changed it (as a security notice
// tells them to) or set it through another link, and a link that leaked,
// or a second one mailed, must not set it again.
func linkOutlived(tok storage.OneTimeToken, u storage.User) bool {
	return u.PasswordChangedAt.After(tok.CreatedAt)
}

// peekLink finds the live link of purpose for secret and its user. A
// secret that finds none is a guess: it counts against ip's address
// throttle (RateLimited once that is reached) and is logged as a failed
// sign-in, for fail2ban. A link that is found is nobody's guess.
func (s *AdminService) peekLink(ctx context.Context, purpose, secret, ip string) (storage.OneTimeToken, storage.User, error) {
	method := purpose + "_link"
	var tok storage.OneTimeToken
	found := false
	if len(secret) == SecretLen {
		var err error
		tok, err = s.store.PeekOneTimeToken(ctx, HashSecret(secret), purpose)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return storage.OneTimeToken{}, storage.User{}, fmt.Errorf("find %s link: %w", purpose, err)
		}
		found = err == nil && tok.UserID != ""
	}
	if !found {
		res, err := s.limiter.Secret(ctx, ip)
		if err != nil {
			return storage.OneTimeToken{}, storage.User{}, s.refused(ctx, err, msgTooManyTokens, method, "", ip)
		}
		if _, err := res.Fail(ctx); err != nil {
			s.log.ErrorContext(ctx, "count failed link", "err", err)
		}
		s.logFailure(ctx, method, "", ip, "unknown, expired or used link")
		return storage.OneTimeToken{}, storage.User{}, errLink
	}
	u, err := s.loadUser(ctx, tok.UserID)
	if errors.Is(err, errNoSuchUser) {
		return storage.OneTimeToken{}, storage.User{}, errLink
	}
	if err != nil {
		return storage.OneTimeToken{}, storage.User{}, err
	}
	if purpose == purposeReset && u.Source != "" {
		return storage.OneTimeToken{}, storage.User{}, s.passwordElsewhere(u)
	}
	if linkOutlived(tok, u) {
		return storage.OneTimeToken{}, storage.User{}, errLink
	}
	// Blocking the account cut its workflow short (pendingInitiator): the
	// link waits for the account to be unblocked, as a sign-in does.
	if err := CheckActive(u); err != nil {
		return storage.OneTimeToken{}, storage.User{}, err
	}
	return tok, u, nil
}

// OutboxLinkExpiry is the outbox kind that reports, when an administrator's
// link expires, whether it went unused (LinkExpired).
const OutboxLinkExpiry = "link_expiry"

// Events of links that expired unused.
const (
	EventInvitationExpired        = "user.invitation_expired"
	EventPasswordResetLinkExpired = "user.password_reset_link_expired"
)

// linkExpiry is an OutboxLinkExpiry message: which link, for whom, by whom.
type linkExpiry struct {
	Purpose   string    `json:"purpose"`
	UserID    string    `json:"user_id"`
	Initiator string    `json:"initiator"`
	CreatedAt time.Time `json:"created_at"`
	// Hash is the link's one-time token (not the secret), to tell it from
	// a newer link that took its place; empty in messages queued before.
	Hash string `json:"hash,omitempty"`
}

// pendingInitiator is who made a live invitation or reset link of user id,
// other than actor: when actor ends the account's workflow (blocks or
// deletes the account), the event names that user as its Initiator, so
// their webhooks hear that the workflow they started was cut short.
func (s *AdminService) pendingInitiator(ctx context.Context, actor Actor, id string) string {
	for _, purpose := range []string{purposeInvite, purposeReset} {
		tok, err := s.store.UserOneTimeToken(ctx, id, purpose)
		if err != nil {
			if !errors.Is(err, storage.ErrNotFound) {
				s.log.ErrorContext(ctx, "find the pending link of a user", "user_id", id, "purpose", purpose, "err", err)
			}
			continue
		}
		if tok.CreatedBy != "" && (actor.Kind != ActorUser || tok.CreatedBy != actor.UserID) {
			return tok.CreatedBy
		}
	}
	return ""
}

// LinkExpired handles an OutboxLinkExpiry message, due when its link
// expired: an invitation whose account still has no password, or a reset
// link after which the password did not change, ended unused, and an
// event (with the link's creator as Initiator) says so. A user deleted
// meanwhile, or a newer link by the same creator, ends nothing.
func (s *AdminService) LinkExpired(ctx context.Context, payload []byte) error {
	var l linkExpiry
	if err := json.Unmarshal(payload, &l); err != nil {
		return fmt.Errorf("decode a link expiry: %w", err)
	}
	u, err := s.store.GetUser(ctx, l.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load user %q: %w", l.UserID, err)
	}
	// The same maker made the link again, which voided this one (one live
	// link per user and purpose): the workflow goes on with the newer
	// link, whose own expiry reports its end. (A link another user made
	// in its place cut this maker's workflow short: that is reported.)
	if l.Hash != "" {
		tok, err := s.store.UserOneTimeToken(ctx, l.UserID, l.Purpose)
		switch {
		case err == nil && tok.Hash != l.Hash && tok.CreatedBy == l.Initiator:
			return nil
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("find the live %s link of %q: %w", l.Purpose, l.UserID, err)
		}
	}
	typ := ""
	switch {
	case l.Purpose == purposeInvite && u.PasswordHash == "":
		typ = EventInvitationExpired
	case l.Purpose == purposeReset && !u.PasswordChangedAt.After(l.CreatedAt):
		typ = EventPasswordResetLinkExpired
	default:
		return nil // used
	}
	s.audit(ctx, SystemActor, storage.AuditEvent{Type: typ, TargetUserID: u.ID, Initiator: l.Initiator})
	return nil
}
