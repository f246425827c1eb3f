package account

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyport/keyport/storage"
)

// Passkeys (WebAuthn) on go-webauthn. The relying party is Keyport's
// issuer: its host is the RP ID and its origin the only origin accepted.
// Ceremony state (the challenge) stays on the server as a one-time token
// for five minutes; the browser holds only its random ID, so a challenge
// can be answered once and never replayed from a copied cookie.

const (
	ceremonyLifetime    = 5 * time.Minute
	purposeRegister     = "webauthn-register"
	purposeLogin        = "webauthn-login"
	purposeSecondFactor = "webauthn-2fa"
	// MaxPasskeyAnswerBytes bounds an authenticator's answer. Real ones are
	// a few KiB (attestation certificates included).
	MaxPasskeyAnswerBytes = 32 << 10
	maxPasskeyName        = 64
)

var (
	errPasskeyFailed   = Errorf(Unauthorized, "The passkey could not be verified. Try again, or use another way to sign in.")
	errCeremonyExpired = Errorf(Invalid, "This passkey request has expired. Please try again.")
	errPasskeyTooLarge = Errorf(Invalid, "The passkey answer is too large.")
	errPasskeyUnknown  = Errorf(NotFound, "That passkey is not on your list.")
)

type webauthnState struct {
	once sync.Once
	wa   *webauthn.WebAuthn
	err  error
}

// relyingParty derives the WebAuthn RP ID and origin from the issuer URL:
// https://id.example.com:8443/keyport → "id.example.com", "https://id.example.com:8443".
func relyingParty(issuer string) (rpID, origin string, err error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", fmt.Errorf("passkeys need an http(s) issuer URL, not %q", issuer)
	}
	return strings.ToLower(u.Hostname()), u.Scheme + "://" + strings.ToLower(u.Host), nil
}

func (s *CredentialService) webauthn() (*webauthn.WebAuthn, error) {
	s.wa.once.Do(func() {
		rpID, origin, err := relyingParty(s.policy().Issuer)
		if err != nil {
			s.wa.err = err
			return
		}
		// webauthn.New refuses an IP address as RP ID, as browsers do.
		s.wa.wa, s.wa.err = webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "Keyport", RPOrigins: []string{origin}})
	})
	if s.wa.err != nil {
		return nil, &Error{Code: Unavailable, Message: "Passkeys are not available on this server.", Err: s.wa.err}
	}
	return s.wa.wa, nil
}

// PasskeysAvailable tells whether the issuer can be a WebAuthn relying
// party (it needs a domain name: browsers refuse IP addresses).
func (s *CredentialService) PasskeysAvailable() bool {
	_, err := s.webauthn()
	return err == nil
}

// passkeyUser adapts a user and their passkeys to go-webauthn. The user
// handle is the user ID: random, stable, and never the username, so an
// authenticator's list of accounts reveals nothing that changes.
type passkeyUser struct {
	u     storage.User
	creds []webauthn.Credential
}

func (p passkeyUser) WebAuthnID() []byte                         { return []byte(p.u.ID) }
func (p passkeyUser) WebAuthnName() string                       { return p.u.Username }
func (p passkeyUser) WebAuthnDisplayName() string                { return DisplayName(p.u) }
func (p passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

func (s *CredentialService) passkeyUser(ctx context.Context, u storage.User) (passkeyUser, []storage.Credential, error) {
	records, err := s.store.ListCredentials(ctx, u.ID, storage.KindPasskey)
	if err != nil {
		return passkeyUser{}, nil, fmt.Errorf("list passkeys of %q: %w", u.ID, err)
	}
	pu := passkeyUser{u: u}
	for _, r := range records {
		var c webauthn.Credential
		if err := json.Unmarshal(r.WebAuthn, &c); err != nil {
			return passkeyUser{}, nil, fmt.Errorf("decode passkey %q: %w", r.ID, err)
		}
		pu.creds = append(pu.creds, c)
	}
	return pu, records, nil
}

// ceremony is what a one-time token keeps between begin and finish.
type ceremony struct {
	Session webauthn.SessionData `json:"session"`
	// Name is the name asked for at the start of a registration ("" for
	// the next default name).
	Name string `json:"name,omitempty"`
}

// saveCeremony keeps a ceremony's state server-side and returns its ID.
func (s *CredentialService) saveCeremony(ctx context.Context, purpose, userID string, c ceremony) (string, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode %s ceremony: %w", purpose, err)
	}
	id := NewSecret()
	now := s.now()
	if err := s.store.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: HashSecret(id), Purpose: purpose, UserID: userID, Data: data, CreatedAt: now, ExpiresAt: now.Add(ceremonyLifetime)}); err != nil {
		return "", fmt.Errorf("save %s ceremony: %w", purpose, err)
	}
	return id, nil
}

// takeCeremony consumes a ceremony: each challenge is answered at most
// once, by the user it was made for, within its lifetime.
func (s *CredentialService) takeCeremony(ctx context.Context, purpose, id, userID string) (ceremony, error) {
	var c ceremony
	if id == "" {
		return c, errCeremonyExpired
	}
	tok, err := s.store.ConsumeOneTimeToken(ctx, HashSecret(id), purpose)
	if errors.Is(err, storage.ErrNotFound) {
		return c, errCeremonyExpired
	}
	if err != nil {
		return c, fmt.Errorf("take %s ceremony: %w", purpose, err)
	}
	if tok.UserID != userID || !s.now().Before(tok.ExpiresAt) {
		return c, errCeremonyExpired
	}
	if err := json.Unmarshal(tok.Data, &c); err != nil {
		return c, fmt.Errorf("decode %s ceremony: %w", purpose, err)
	}
	return c, nil
}

// passkeyName checks a passkey's name: 1 to 64 characters, unique among the
// user's passkeys (ignoring case), self excepted when renaming. An empty
// name on a new passkey becomes the first free "Passkey N".
func (s *CredentialService) passkeyName(ctx context.Context, userID, name, self string) (string, error) {
	name = strings.TrimSpace(name)
	existing, err := s.store.ListCredentials(ctx, userID, storage.KindPasskey)
	if err != nil {
		return "", fmt.Errorf("list passkeys of %q: %w", userID, err)
	}
	taken := func(n string) bool {
		for _, c := range existing {
			if c.ID != self && strings.EqualFold(c.Name, n) {
				return true
			}
		}
		return false
	}
	if name == "" && self == "" {
		for i := len(existing) + 1; ; i++ {
			if n := fmt.Sprintf("Passkey %d", i); !taken(n) {
				return n, nil
			}
		}
	}
	if name == "" || utf8.RuneCountInString(name) > maxPasskeyName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", FieldErrorf("name", "Give the passkey a name of 1 to 64 characters.")
	}
	if taken(name) {
		return "", &Error{Code: Conflict, Field: "name", Message: "You already have a passkey with this name."}
	}
	return name, nil
}

// BeginPasskeyRegistration starts adding a passkey called name (empty: a
// default name). It returns the options for navigator.credentials.create
// (JSON) and the ceremony ID for FinishPasskeyRegistration. The name is
// checked here, before the person touches their authenticator.
func (s *CredentialService) BeginPasskeyRegistration(ctx context.Context, u storage.User, name string) ([]byte, string, error) {
	if s.SecondFactorByDirectory(u) {
		return nil, "", errEnrolmentByDirectory
	}
	wa, err := s.webauthn()
	if err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(name) != "" {
		if name, err = s.passkeyName(ctx, u.ID, name, ""); err != nil {
			return nil, "", err
		}
	}
	pu, _, err := s.passkeyUser(ctx, u)
	if err != nil {
		return nil, "", err
	}
	// Resident (discoverable) keys, so the passkey signs in without a
	// username; user verification preferred, so security keys without a
	// PIN still work; the user's own passkeys excluded, so one
	// authenticator is not registered twice.
	var exclude []protocol.CredentialDescriptor
	for _, c := range pu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sd, err := wa.BeginRegistration(pu,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred,
		}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, "", fmt.Errorf("begin passkey registration: %w", err)
	}
	opts, err := json.Marshal(creation)
	if err != nil {
		return nil, "", fmt.Errorf("encode creation options: %w", err)
	}
	id, err := s.saveCeremony(ctx, purposeRegister, u.ID, ceremony{Session: *sd, Name: name})
	if err != nil {
		return nil, "", err
	}
	return opts, id, nil
}

// FinishPasskeyRegistration verifies the authenticator's answer (the
// PublicKeyCredential as JSON) and stores the passkey.
func (s *CredentialService) FinishPasskeyRegistration(ctx context.Context, u storage.User, ceremonyID string, body []byte) (storage.Credential, error) {
	wa, err := s.webauthn()
	if err != nil {
		return storage.Credential{}, err
	}
	c, err := s.takeCeremony(ctx, purposeRegister, ceremonyID, u.ID)
	if err != nil {
		return storage.Credential{}, err
	}
	if len(body) > MaxPasskeyAnswerBytes {
		return storage.Credential{}, errPasskeyTooLarge
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(body))
	if err != nil {
		s.log.InfoContext(ctx, "passkey registration unreadable", "user_id", u.ID, "err", err)
		return storage.Credential{}, Errorf(Invalid, "The passkey answer could not be read.")
	}
	pu, _, err := s.passkeyUser(ctx, u)
	if err != nil {
		return storage.Credential{}, err
	}
	cred, err := wa.CreateCredential(pu, c.Session, parsed)
	if err != nil {
		s.log.InfoContext(ctx, "passkey registration refused", "user_id", u.ID, "err", err)
		return storage.Credential{}, Errorf(Invalid, "The passkey could not be registered. Please try again.")
	}
	// Checked again: another passkey may have taken the name meanwhile.
	name, err := s.passkeyName(ctx, u.ID, c.Name, "")
	if err != nil {
		return storage.Credential{}, err
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return storage.Credential{}, fmt.Errorf("encode passkey: %w", err)
	}
	rec := storage.Credential{ID: NewID(), UserID: u.ID, Kind: storage.KindPasskey, Name: name, WebAuthnID: cred.ID, WebAuthn: raw, CreatedAt: s.now()}
	if err := s.store.CreateCredential(ctx, rec); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.Credential{}, Errorf(Conflict, "This passkey is already registered.")
		}
		return storage.Credential{}, fmt.Errorf("store passkey of %q: %w", u.ID, err)
	}
	s.log.InfoContext(ctx, "passkey registered", "user_id", u.ID, "credential_id", rec.ID)
	s.audit(ctx, userActor(u.ID), storage.AuditEvent{Type: EventPasskeyAdded, TargetUserID: u.ID, Changes: credentialNamed(rec)})
	return rec, nil
}

// BeginPasskeyLogin starts a sign-in without a username (discoverable
// credentials; also used for the browser's passkey autofill).
func (s *CredentialService) BeginPasskeyLogin(ctx context.Context) ([]byte, string, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, "", err
	}
	assertion, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, "", fmt.Errorf("begin passkey sign-in: %w", err)
	}
	return s.beginAssertion(ctx, purposeLogin, "", assertion, sd)
}

// BeginPasskeySecondFactor asks for one of u's passkeys after a password.
func (s *CredentialService) BeginPasskeySecondFactor(ctx context.Context, u storage.User) ([]byte, string, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, "", err
	}
	pu, _, err := s.passkeyUser(ctx, u)
	if err != nil {
		return nil, "", err
	}
	if len(pu.creds) == 0 {
		return nil, "", Errorf(Invalid, "You have no passkey yet.")
	}
	assertion, sd, err := wa.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, "", fmt.Errorf("begin passkey second factor: %w", err)
	}
	return s.beginAssertion(ctx, purposeSecondFactor, u.ID, assertion, sd)
}

func (s *CredentialService) beginAssertion(ctx context.Context, purpose, userID string, assertion *protocol.CredentialAssertion, sd *webauthn.SessionData) ([]byte, string, error) {
	opts, err := json.Marshal(assertion)
	if err != nil {
		return nil, "", fmt.Errorf("encode request options: %w", err)
	}
	id, err := s.saveCeremony(ctx, purpose, userID, ceremony{Session: *sd})
	if err != nil {
		return nil, "", err
	}
	return opts, id, nil
}

// FinishPasskeyLogin verifies a username-less sign-in and returns the user
// and the authentication methods (RFC 8176):
//   - "hwk" (proof of possession of a hardware-secured key) for a passkey
//     bound to its device, "swk" (software-secured key) for one the
//     authenticator says may be synced to other devices (backup eligible);
//   - plus "mfa" when the authenticator verified the person (PIN or
//     biometrics, the UV flag): the key is something they have, unlocked
//     by something they know or are. Without UV it is one factor.
//
// The successful sign-in itself is recorded by FinishSignIn, which starts
// the session; failures are recorded here, with the reason.
func (s *CredentialService) FinishPasskeyLogin(ctx context.Context, ceremonyID string, body []byte, ip, userAgent string) (storage.User, []string, error) {
	return s.finishAssertion(ctx, purposeLogin, nil, ceremonyID, body, ip, userAgent)
}

// FinishPasskeySecondFactor verifies one of u's passkeys after their
// password and returns its AMR values (as FinishPasskeyLogin).
func (s *CredentialService) FinishPasskeySecondFactor(ctx context.Context, u storage.User, ceremonyID string, body []byte, ip, userAgent string) ([]string, error) {
	_, amr, err := s.finishAssertion(ctx, purposeSecondFactor, &u, ceremonyID, body, ip, userAgent)
	return amr, err
}

func (s *CredentialService) finishAssertion(ctx context.Context, purpose string, known *storage.User, ceremonyID string, body []byte, ip, userAgent string) (storage.User, []string, error) {
	wa, err := s.webauthn()
	if err != nil {
		return storage.User{}, nil, err
	}
	userID := ""
	if known != nil {
		userID = known.ID
	}
	c, err := s.takeCeremony(ctx, purpose, ceremonyID, userID)
	if err != nil {
		return storage.User{}, nil, err
	}
	now := s.now()
	attempt := storage.LoginAttempt{ID: NewID(), UserID: userID, Time: now, IP: ip, UserAgent: userAgent, Method: "passkey"}
	if known != nil {
		attempt.Login = known.Username
	}
	fail := func(reason string, err error) (storage.User, []string, error) {
		attempt.Reason = reason
		s.record(ctx, attempt)
		return storage.User{}, nil, err
	}
	if len(body) > MaxPasskeyAnswerBytes {
		return fail("passkey answer too large", errPasskeyTooLarge)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(body))
	if err != nil {
		return fail("unreadable passkey answer", errPasskeyFailed)
	}
	record, err := s.store.GetCredentialByWebAuthnID(ctx, parsed.RawID)
	if err != nil || record.Kind != storage.KindPasskey || (known != nil && record.UserID != known.ID) {
		return fail("unknown passkey", errPasskeyFailed)
	}
	attempt.UserID = record.UserID
	u, err := s.store.GetUser(ctx, record.UserID)
	if err != nil {
		return fail("unknown account", errPasskeyFailed)
	}
	attempt.Login = u.Username
	pu, _, err := s.passkeyUser(ctx, u)
	if err != nil {
		return storage.User{}, nil, err
	}
	var cred *webauthn.Credential
	if known != nil {
		cred, err = wa.ValidateLogin(pu, c.Session, parsed)
	} else {
		// The user handle the authenticator returns must name the owner of
		// the credential it used.
		cred, err = wa.ValidateDiscoverableLogin(func(_, userHandle []byte) (webauthn.User, error) {
			if string(userHandle) != u.ID {
				return nil, errors.New("user handle does not match the passkey's owner")
			}
			return pu, nil
		}, c.Session, parsed)
	}
	if err != nil {
		s.log.InfoContext(ctx, "passkey assertion refused", "user_id", u.ID, "err", err)
		return fail("passkey not verified", errPasskeyFailed)
	}
	// A signature counter that did not go up means two copies of the key
	// exist (authenticators that keep no counter always send 0).
	if cred.Authenticator.CloneWarning {
		s.log.WarnContext(ctx, "passkey counter went backwards", "user_id", u.ID, "credential_id", record.ID)
		return fail("passkey signature counter went backwards (possible clone)", errPasskeyFailed)
	}
	if err := CheckInteractive(u); err != nil {
		reason := "account disabled"
		if !u.Blocked {
			reason = "system account"
		}
		return fail(reason, err)
	}
	if err := checkNetwork(u, ip); err != nil {
		return fail("network not allowed", err)
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return storage.User{}, nil, fmt.Errorf("encode passkey: %w", err)
	}
	// The new counter must be stored, or the next use would look cloned.
	if _, err := s.store.UpdateCredential(ctx, u.ID, record.ID, func(c storage.Credential) (storage.Credential, error) {
		c.WebAuthn, c.LastUsedAt, c.LastIP = raw, now, ip
		return c, nil
	}); err != nil {
		return storage.User{}, nil, fmt.Errorf("update passkey %q: %w", record.ID, err)
	}
	amr := []string{"hwk"}
	if cred.Flags.BackupEligible {
		amr[0] = "swk"
	}
	if parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		amr = append(amr, "mfa")
	}
	return u, amr, nil
}

// RenamePasskey changes the name of one of u's passkeys.
func (s *CredentialService) RenamePasskey(ctx context.Context, u storage.User, id, name string) error {
	c, err := s.ownPasskey(ctx, u, id)
	if err != nil {
		return err
	}
	if name, err = s.passkeyName(ctx, u.ID, name, c.ID); err != nil {
		return err
	}
	if name == c.Name {
		return nil
	}
	if _, err := s.store.UpdateCredential(ctx, u.ID, id, func(c storage.Credential) (storage.Credential, error) {
		c.Name = name
		return c, nil
	}); err != nil {
		return fmt.Errorf("rename passkey %q: %w", id, err)
	}
	return nil
}

// DeletePasskey removes one of u's passkeys. The portal asks for the
// password (or a recent sign-in) first.
func (s *CredentialService) DeletePasskey(ctx context.Context, u storage.User, id string) error {
	c, err := s.ownPasskey(ctx, u, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteCredential(ctx, u.ID, id); errors.Is(err, storage.ErrNotFound) {
		return errPasskeyUnknown
	} else if err != nil {
		return fmt.Errorf("delete passkey %q: %w", id, err)
	}
	s.log.InfoContext(ctx, "passkey removed", "user_id", u.ID, "credential_id", id)
	s.audit(ctx, userActor(u.ID), storage.AuditEvent{Type: EventPasskeyRemoved, TargetUserID: u.ID, Changes: credentialNamed(c)})
	return nil
}

// ownPasskey loads one of u's passkeys; any other credential is not found.
func (s *CredentialService) ownPasskey(ctx context.Context, u storage.User, id string) (storage.Credential, error) {
	c, err := s.store.GetCredential(ctx, u.ID, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.Kind != storage.KindPasskey) {
		return storage.Credential{}, errPasskeyUnknown
	}
	if err != nil {
		return storage.Credential{}, fmt.Errorf("load passkey %q: %w", id, err)
	}
	return c, nil
}

// Passkeys lists the user's passkeys, oldest first.
func (s *CredentialService) Passkeys(ctx context.Context, userID string) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, userID, storage.KindPasskey)
	if err != nil {
		return nil, fmt.Errorf("list passkeys of %q: %w", userID, err)
	}
	return cs, nil
}
