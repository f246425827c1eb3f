package account

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/keyport/keyport/storage"
)

// TOTP parameters: what every authenticator app understands (RFC 6238's
// defaults).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew accepts the code of the step before and after the current
	// one, for clocks that drift a little.
	totpSkew = 1
	// RecoveryCodeCount codes are issued at a time.
	RecoveryCodeCount = 10
)

// TOTPEnrolment is what the person needs to add Keyport to an authenticator app.
type TOTPEnrolment struct {
	Secret string // base32, to type in
	URL    string // otpauth:// URL, in the QR code
	QRPNG  []byte // the QR code as PNG, rendered here (no external service)
}

// TOTPSealPurpose is the purpose a user's TOTP secret is sealed for
// (seal.Sealer).
func TOTPSealPurpose(userID string) string { return "totp:" + userID }

// issuerLabel is the name authenticator apps show: the issuer's host.
func (s *CredentialService) issuerLabel() string {
	if u, err := url.Parse(s.policy().Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "Keyport"
}

// BeginTOTP creates a new secret and keeps it (sealed) as pending until the
// person proves with a code that their app has it.
func (s *CredentialService) BeginTOTP(ctx context.Context, u storage.User) (TOTPEnrolment, error) {
	if s.SecondFactorByDirectory(u) {
		return TOTPEnrolment{}, errEnrolmentByDirectory
	}
	if s.sealer == nil {
		return TOTPEnrolment{}, errors.New("no sealer for TOTP secrets")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.issuerLabel(), AccountName: u.Username, Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("generate TOTP secret: %w", err)
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("render TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("encode TOTP QR code: %w", err)
	}
	sealed := s.sealer.Seal([]byte(key.Secret()), TOTPSealPurpose(u.ID))
	if _, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.TOTPPending = sealed
		return u, nil
	}); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("store pending TOTP of %q: %w", u.ID, err)
	}
	return TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}, nil
}

// PendingTOTP re-renders a pending enrolment (after a wrong code).
func (s *CredentialService) PendingTOTP(u storage.User) (TOTPEnrolment, bool) {
	if len(u.TOTPPending) == 0 || s.sealer == nil {
		return TOTPEnrolment{}, false
	}
	secret, err := s.sealer.Open(u.TOTPPending, TOTPSealPurpose(u.ID))
	if err != nil {
		return TOTPEnrolment{}, false
	}
	key, err := otp.NewKeyFromURL(fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s&period=%d&digits=6&algorithm=SHA1",
		url.PathEscape(s.issuerLabel()), url.PathEscape(u.Username), secret, url.QueryEscape(s.issuerLabel()), totpPeriod))
	if err != nil {
		return TOTPEnrolment{}, false
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return TOTPEnrolment{}, false
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return TOTPEnrolment{Secret: string(secret), URL: key.URL(), QRPNG: buf.Bytes()}, true
}

// matchTOTP returns the time step whose code equals code, or 0.
func matchTOTP(secret, code string, now time.Time) int64 {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != totpDigits.Length() {
		return 0
	}
	var found int64
	for off := -totpSkew; off <= totpSkew; off++ {
		t := now.Add(time.Duration(off*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found = t.Unix() / totpPeriod
		}
	}
	return found
}

var errWrongCode = FieldErrorf("code", "That code is not correct. Check the time on your device and try the newest code.")

// ConfirmTOTP turns a pending enrolment on when code matches, and returns
// fresh recovery codes (shown once).
func (s *CredentialService) ConfirmTOTP(ctx context.Context, u storage.User, code string) ([]string, error) {
	if len(u.TOTPPending) == 0 {
		return nil, Errorf(Invalid, "Start the set-up again: no authenticator app is waiting for confirmation.")
	}
	secret, err := s.sealer.Open(u.TOTPPending, TOTPSealPurpose(u.ID))
	if err != nil {
		return nil, fmt.Errorf("open pending TOTP of %q: %w", u.ID, err)
	}
	step := matchTOTP(string(secret), code, s.now())
	if step == 0 {
		return nil, errWrongCode
	}
	codes, hashes := newRecoveryCodes()
	_, err = s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.TOTPSecret, u.TOTPPending, u.TOTPLastStep = u.TOTPPending, nil, step
		u.RecoveryCodes = hashes
		return u, nil
	})
	if err != nil {
		return nil, fmt.Errorf("enable TOTP of %q: %w", u.ID, err)
	}
	s.log.InfoContext(ctx, "TOTP enabled", "user_id", u.ID)
	s.audit(ctx, userActor(u.ID), storage.AuditEvent{Type: EventTOTPEnabled, TargetUserID: u.ID})
	return codes, nil
}

// DisableTOTP turns TOTP off; the password is always required.
func (s *CredentialService) DisableTOTP(ctx context.Context, u storage.User, password, ip, userAgent string) error {
	if err := s.VerifyCurrentPassword(ctx, u, password, ip, userAgent); err != nil {
		return err
	}
	_, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.TOTPSecret, u.TOTPPending, u.TOTPLastStep, u.RecoveryCodes = nil, nil, 0, nil
		return u, nil
	})
	if err != nil {
		return fmt.Errorf("disable TOTP of %q: %w", u.ID, err)
	}
	s.log.InfoContext(ctx, "TOTP disabled", "user_id", u.ID)
	s.audit(ctx, Actor{Kind: ActorUser, UserID: u.ID, IP: ip, UserAgent: userAgent}, storage.AuditEvent{Type: EventTOTPDisabled, TargetUserID: u.ID})
	return nil
}

// VerifyTOTP checks a code at sign-in. A code is accepted once: the step it
// belongs to is stored in the same transaction, and a step at or before the
// last accepted one is refused, so a code seen over a shoulder is useless.
func (s *CredentialService) VerifyTOTP(ctx context.Context, u storage.User, code, ip, userAgent string) error {
	now := s.now()
	res, err := s.limiter.Code(ctx, u.ID, ip)
	if err != nil {
		return s.refused(ctx, err, msgTooManyCodes, "otp", u.Username, ip)
	}
	fail := func(reason string) error {
		s.failed(ctx, res, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: u.Username, Time: now, IP: ip, UserAgent: userAgent, Method: "otp"}, reason)
		return errWrongCode
	}
	if len(u.TOTPSecret) == 0 {
		return fail("no authenticator app")
	}
	secret, err := s.sealer.Open(u.TOTPSecret, TOTPSealPurpose(u.ID))
	if err != nil {
		res.Cancel()
		return fmt.Errorf("open TOTP secret of %q: %w", u.ID, err)
	}
	step := matchTOTP(string(secret), code, now)
	if step == 0 {
		return fail("wrong code")
	}
	errReplay := errors.New("replayed")
	_, err = s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		if step <= u.TOTPLastStep {
			return u, errReplay
		}
		u.TOTPLastStep = step
		return u, nil
	})
	if errors.Is(err, errReplay) {
		return fail("code already used")
	}
	if err != nil {
		res.Cancel()
		return fmt.Errorf("record TOTP step of %q: %w", u.ID, err)
	}
	if err := res.Succeed(ctx); err != nil {
		s.log.ErrorContext(ctx, "forgive wrong codes", "user_id", u.ID, "err", err)
	}
	return nil
}

// HasTOTP tells whether u has an authenticator app enrolled.
func HasTOTP(u storage.User) bool { return len(u.TOTPSecret) > 0 }

// HasSecondFactor tells whether u has TOTP or a passkey.
func (s *CredentialService) HasSecondFactor(ctx context.Context, u storage.User) (bool, error) {
	if HasTOTP(u) {
		return true, nil
	}
	keys, err := s.store.ListCredentials(ctx, u.ID, storage.KindPasskey)
	if err != nil {
		return false, fmt.Errorf("list passkeys of %q: %w", u.ID, err)
	}
	return len(keys) > 0, nil
}
