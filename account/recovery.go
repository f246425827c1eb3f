package account

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/keyport/keyport/storage"
)

// Recovery codes: ten single-use codes like "k7m2p-x9c4t", from an alphabet
// without look-alikes (no 0/o, 1/l/i). 50 bits each; they are throttled like
// TOTP codes.
const recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

func newRecoveryCodes() (codes, hashes []string) {
	for range RecoveryCodeCount {
		raw := randomFrom(recoveryAlphabet, 10)
		var sb strings.Builder
		sb.WriteString(raw[:5])
		sb.WriteByte('-')
		sb.WriteString(raw[5:])
		code := sb.String()
		codes = append(codes, code)
		hashes = append(hashes, HashSecret(normalizeRecoveryCode(code)))
	}
	return codes, hashes
}

// normalizeRecoveryCode ignores case, spaces and dashes.
func normalizeRecoveryCode(code string) string {
	code = strings.ToLower(code)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, code)
}

// RegenerateRecoveryCodes replaces the user's recovery codes.
func (s *CredentialService) RegenerateRecoveryCodes(ctx context.Context, u storage.User) ([]string, error) {
	if !HasTOTP(u) {
		return nil, Errorf(Invalid, "Set up an authenticator app first.")
	}
	codes, hashes := newRecoveryCodes()
	if _, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.RecoveryCodes = hashes
		return u, nil
	}); err != nil {
		return nil, fmt.Errorf("regenerate recovery codes of %q: %w", u.ID, err)
	}
	s.audit(ctx, userActor(u.ID), storage.AuditEvent{Type: EventRecoveryCodesRegenerated, TargetUserID: u.ID})
	return codes, nil
}

var errWrongRecoveryCode = FieldErrorf("recovery_code", "That recovery code is not correct or was already used.")

// UseRecoveryCode accepts a recovery code once: it is removed in the same
// transaction that finds it.
func (s *CredentialService) UseRecoveryCode(ctx context.Context, u storage.User, code, ip, userAgent string) error {
	now := s.now()
	res, err := s.limiter.Code(ctx, u.ID, ip)
	if err != nil {
		return s.refused(ctx, err, msgTooManyCodes, "recovery_code", u.Username, ip)
	}
	want := HashSecret(normalizeRecoveryCode(code))
	errUnknown := errors.New("unknown recovery code")
	_, err = s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		found := -1
		for i, h := range u.RecoveryCodes {
			if subtle.ConstantTimeCompare([]byte(h), []byte(want)) == 1 {
				found = i
			}
		}
		if found < 0 {
			return u, errUnknown
		}
		u.RecoveryCodes = append(u.RecoveryCodes[:found:found], u.RecoveryCodes[found+1:]...)
		return u, nil
	})
	if errors.Is(err, errUnknown) {
		s.failed(ctx, res, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: u.Username, Time: now, IP: ip, UserAgent: userAgent, Method: "recovery_code"}, "wrong recovery code")
		return errWrongRecoveryCode
	}
	if err != nil {
		res.Cancel()
		return fmt.Errorf("use recovery code of %q: %w", u.ID, err)
	}
	if err := res.Succeed(ctx); err != nil {
		s.log.ErrorContext(ctx, "forgive wrong codes", "user_id", u.ID, "err", err)
	}
	s.log.InfoContext(ctx, "recovery code used", "user_id", u.ID, "left", len(u.RecoveryCodes)-1)
	return nil
}
