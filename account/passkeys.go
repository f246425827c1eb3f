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

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyport/keyport/storage"
)

// Passkeys (WebAuthn Level 3) on go-webauthn. The relying party is
// Keyport's issuer: its host is the RP ID and its origin the only origin
// accepted. Ceremony state (the challenge) stays on the server as a
// one-time token for five minutes; the browser holds only its random ID.

const (
	ceremonyLifetime     = 5 * time.Minute
	purposeRegister      = "webauthn-register"
	purposeLogin         = "webauthn-login"
	purposeSecondFactor  = "webauthn-2fa"
	maxCeremonyBodyBytes = 64 << 10
)

var errPasskeyFailed = Errorf(Unauthorized, "The passkey could not be verified. Try again, or use another way to sign in.")

type webauthnState struct {
	once sync.Once
	wa   *webauthn.WebAuthn
	err  error
}

func (s *Service) webauthn() (*webauthn.WebAuthn, error) {
	s.wa.once.Do(func() {
		u, err := url.Parse(s.policy.Issuer)
		if err != nil || u.Hostname() == "" {
			s.wa.err = fmt.Errorf("passkeys need an issuer URL, not %q", s.policy.Issuer)
			return
		}
		s.wa.wa, s.wa.err = webauthn.New(&webauthn.Config{
			RPID:          u.Hostname(),
			RPDisplayName: "Keyport",
			RPOrigins:     []string{u.Scheme + "://" + u.Host},
		})
	})
	if s.wa.err != nil {
		return nil, &Error{Code: Unavailable, Message: "Passkeys are not available on this server.", Err: s.wa.err}
	}
	return s.wa.wa, nil
}

// passkeyUser adapts a user and their passkeys to go-webauthn. The user
// handle is the user ID: random, stable, and never the username.
type passkeyUser struct {
	u     storage.User
	creds []webauthn.Credential
}

func (p passkeyUser) WebAuthnID() []byte                         { return []byte(p.u.ID) }
func (p passkeyUser) WebAuthnName() string                       { return p.u.Username }
func (p passkeyUser) WebAuthnDisplayName() string                { return DisplayName(p.u) }
func (p passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

func (s *Service) passkeyUser(ctx context.Context, u storage.User) (passkeyUser, []storage.Credential, error) {
	records, err := s.store.ListCredentials(ctx, u.ID, storage.KindPasskey)
	if err != nil {
		return passkeyUser{}, nil, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	pu := passkeyUser{u: u}
	for _, r := range records {
		var c webauthn.Credential
		if err := json.Unmarshal(r.WebAuthn, &c); err != nil {
			return passkeyUser{}, nil, &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("decode passkey %q: %w", r.ID, err)}
		}
		pu.creds = append(pu.creds, c)
	}
	return pu, records, nil
}

// saveCeremony keeps a ceremony's session data server-side and returns its ID.
func (s *Service) saveCeremony(ctx context.Context, purpose, userID string, sd *webauthn.SessionData) (string, error) {
	data, err := json.Marshal(sd)
	if err != nil {
		return "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	id := NewSecret()
	now := s.now()
	if err := s.store.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: HashSecret(id), Purpose: purpose, UserID: userID, Data: data, CreatedAt: now, ExpiresAt: now.Add(ceremonyLifetime)}); err != nil {
		return "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("save %s ceremony: %w", purpose, err)}
	}
	return id, nil
}

// takeCeremony consumes a ceremony: each challenge is answered at most once.
func (s *Service) takeCeremony(ctx context.Context, purpose, id, userID string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	tok, err := s.store.ConsumeOneTimeToken(ctx, HashSecret(id), purpose)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && tok.UserID != userID) {
		return sd, Errorf(Invalid, "This passkey request has expired. Please try again.")
	}
	if err != nil {
		return sd, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	if err := json.Unmarshal(tok.Data, &sd); err != nil {
		return sd, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return sd, nil
}

// BeginPasskeyRegistration returns the options for navigator.credentials.create.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, u storage.User) ([]byte, string, error) {
	if s.SecondFactorByDirectory(u) {
		return nil, "", errEnrolmentByDirectory
	}
	wa, err := s.webauthn()
	if err != nil {
		return nil, "", err
	}
	pu, _, err := s.passkeyUser(ctx, u)
	if err != nil {
		return nil, "", err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range pu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sd, err := wa.BeginRegistration(pu,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred,
		}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("begin passkey registration: %w", err)}
	}
	id, err := s.saveCeremony(ctx, purposeRegister, u.ID, sd)
	if err != nil {
		return nil, "", err
	}
	opts, err := json.Marshal(creation)
	if err != nil {
		return nil, "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return opts, id, nil
}

// FinishPasskeyRegistration verifies the authenticator's answer and stores
// the passkey under name (a default name when empty).
func (s *Service) FinishPasskeyRegistration(ctx context.Context, u storage.User, ceremonyID, name string, body []byte) (storage.Credential, error) {
	wa, err := s.webauthn()
	if err != nil {
		return storage.Credential{}, err
	}
	sd, err := s.takeCeremony(ctx, purposeRegister, ceremonyID, u.ID)
	if err != nil {
		return storage.Credential{}, err
	}
	pu, records, err := s.passkeyUser(ctx, u)
	if err != nil {
		return storage.Credential{}, err
	}
	if strings.TrimSpace(name) == "" {
		name = fmt.Sprintf("Passkey %d", len(records)+1)
	}
	if name, err = s.checkCredentialName(ctx, u.ID, storage.KindPasskey, name); err != nil {
		return storage.Credential{}, err
	}
	if len(body) > maxCeremonyBodyBytes {
		return storage.Credential{}, Errorf(Invalid, "The passkey answer is too large.")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(body))
	if err != nil {
		return storage.Credential{}, Errorf(Invalid, "The passkey answer could not be read.")
	}
	cred, err := wa.CreateCredential(pu, sd, parsed)
	if err != nil {
		s.log.InfoContext(ctx, "passkey registration refused", "user_id", u.ID, "err", err)
		return storage.Credential{}, Errorf(Invalid, "The passkey could not be registered. Please try again.")
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return storage.Credential{}, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	c := storage.Credential{ID: NewID(), UserID: u.ID, Kind: storage.KindPasskey, Name: name, WebAuthnID: cred.ID, WebAuthn: raw, CreatedAt: s.now()}
	if err := s.store.CreateCredential(ctx, c); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.Credential{}, Errorf(Conflict, "This passkey is already registered.")
		}
		return storage.Credential{}, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	s.log.InfoContext(ctx, "passkey registered", "user_id", u.ID, "credential_id", c.ID)
	return c, nil
}

// BeginPasskeyLogin starts a sign-in without a username (discoverable
// credentials; also used for the browser's passkey autofill).
func (s *Service) BeginPasskeyLogin(ctx context.Context) ([]byte, string, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, "", err
	}
	assertion, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return s.finishBegin(ctx, purposeLogin, "", assertion, sd)
}

// BeginPasskeySecondFactor asks for one of u's passkeys after a password.
func (s *Service) BeginPasskeySecondFactor(ctx context.Context, u storage.User) ([]byte, string, error) {
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
		return nil, "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return s.finishBegin(ctx, purposeSecondFactor, u.ID, assertion, sd)
}

func (s *Service) finishBegin(ctx context.Context, purpose, userID string, assertion *protocol.CredentialAssertion, sd *webauthn.SessionData) ([]byte, string, error) {
	id, err := s.saveCeremony(ctx, purpose, userID, sd)
	if err != nil {
		return nil, "", err
	}
	opts, err := json.Marshal(assertion)
	if err != nil {
		return nil, "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return opts, id, nil
}

// FinishPasskeyLogin verifies a username-less sign-in and returns the user
// and the authentication methods (RFC 8176): "hwk" for a device-bound key,
// "swk" for a synced one, plus "user" and "mfa" when the authenticator
// verified the person (PIN or biometrics): possession and a second factor.
func (s *Service) FinishPasskeyLogin(ctx context.Context, ceremonyID string, body []byte, ip, userAgent string) (storage.User, []string, error) {
	return s.finishAssertion(ctx, purposeLogin, nil, ceremonyID, body, ip, userAgent)
}

// FinishPasskeySecondFactor verifies a passkey of u after their password.
func (s *Service) FinishPasskeySecondFactor(ctx context.Context, u storage.User, ceremonyID string, body []byte, ip, userAgent string) ([]string, error) {
	_, amr, err := s.finishAssertion(ctx, purposeSecondFactor, &u, ceremonyID, body, ip, userAgent)
	return amr, err
}

func (s *Service) finishAssertion(ctx context.Context, purpose string, known *storage.User, ceremonyID string, body []byte, ip, userAgent string) (storage.User, []string, error) {
	wa, err := s.webauthn()
	if err != nil {
		return storage.User{}, nil, err
	}
	userID := ""
	if known != nil {
		userID = known.ID
	}
	sd, err := s.takeCeremony(ctx, purpose, ceremonyID, userID)
	if err != nil {
		return storage.User{}, nil, err
	}
	now := s.now()
	attempt := storage.LoginAttempt{ID: NewID(), UserID: userID, Time: now, IP: ip, UserAgent: userAgent, Method: "passkey"}
	fail := func(reason string, err error) (storage.User, []string, error) {
		attempt.Reason = reason
		s.record(ctx, attempt)
		return storage.User{}, nil, err
	}
	if len(body) > maxCeremonyBodyBytes {
		return fail("passkey answer too large", Errorf(Invalid, "The passkey answer is too large."))
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
		cred, err = wa.ValidateLogin(pu, sd, parsed)
	} else {
		cred, err = wa.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if string(userHandle) != u.ID {
				return nil, errors.New("user handle does not match the passkey's owner")
			}
			return pu, nil
		}, sd, parsed)
	}
	if err != nil {
		s.log.InfoContext(ctx, "passkey assertion refused", "user_id", u.ID, "err", err)
		return fail("passkey not verified", errPasskeyFailed)
	}
	if cred.Authenticator.CloneWarning {
		return fail("passkey signature counter went backwards (possible clone)", errPasskeyFailed)
	}
	if err := CheckActive(u); err != nil {
		return fail("account blocked", err)
	}
	if err := s.CheckNetwork(u, ip); err != nil {
		return fail("network not allowed", err)
	}
	raw, _ := json.Marshal(cred)
	_, _ = s.store.UpdateCredential(ctx, u.ID, record.ID, func(c storage.Credential) (storage.Credential, error) {
		c.WebAuthn, c.LastUsedAt, c.LastIP = raw, now, ip
		return c, nil
	})
	amr := []string{"hwk"}
	if cred.Flags.BackupEligible {
		amr[0] = "swk"
	}
	if parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		amr = append(amr, "user", "mfa")
	}
	// The successful sign-in is recorded by FinishSignIn.
	return u, amr, nil
}

// RenamePasskey changes a passkey's name.
func (s *Service) RenamePasskey(ctx context.Context, u storage.User, id, name string) error {
	c, err := s.store.GetCredential(ctx, u.ID, id)
	if err != nil || c.Kind != storage.KindPasskey {
		return Errorf(NotFound, "That passkey is not on your list.")
	}
	if strings.EqualFold(strings.TrimSpace(name), c.Name) {
		return nil
	}
	if name, err = s.checkCredentialName(ctx, u.ID, storage.KindPasskey, name); err != nil {
		return err
	}
	if _, err := s.store.UpdateCredential(ctx, u.ID, id, func(c storage.Credential) (storage.Credential, error) {
		c.Name = name
		return c, nil
	}); err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return nil
}

// PasskeysAvailable tells whether the issuer can be a WebAuthn relying
// party (it needs a domain name: browsers refuse IP addresses).
func (s *Service) PasskeysAvailable() bool {
	_, err := s.webauthn()
	return err == nil
}
