package account

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyport/keyport/storage"
)

// SignedOut counts what ending a user's sign-ins took away.
type SignedOut struct {
	Sessions int // browser sessions ended
	Tokens   int // refresh and access tokens revoked
}

func (o SignedOut) reason() string {
	return fmt.Sprintf("%d sessions ended, %d tokens revoked", o.Sessions, o.Tokens)
}

// signOut ends every session of the user and revokes every refresh and
// access token.
func (s *AdminService) signOut(ctx context.Context, id string) (SignedOut, error) {
	ended, revoked, err := s.users.signOut(ctx, id, "")
	return SignedOut{Sessions: ended, Tokens: revoked}, err
}

// BlockUser blocks user id and, at once, ends every session and revokes
// every refresh and access token: nothing issued before keeps working,
// and the account cannot sign in. Its API tokens and app passwords stay
// stored but are refused while it is blocked (as every credential of a
// blocked account is), and work again after UnblockUser. An administrator
// cannot block themselves, nor anyone the last administrator who can act
// (Conflict). Blocking a blocked user ends whatever is left and records
// nothing. Event: "user.blocked".
func (s *AdminService) BlockUser(ctx context.Context, actor Actor, id string) (SignedOut, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return SignedOut{}, err
	}
	if actor.Kind == ActorUser && actor.UserID == id {
		return SignedOut{}, Errorf(Forbidden, "You cannot block your own account.")
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return SignedOut{}, err
	}
	if err := s.keepAnAdmin(ctx, u, ""); err != nil {
		return SignedOut{}, err
	}
	changed, err := s.setBlocked(ctx, id, true)
	if err != nil {
		return SignedOut{}, err
	}
	out, err := s.signOut(ctx, id)
	if err != nil {
		return out, err
	}
	if changed {
		e := userEvent("user.blocked", u, storage.AuditChange{Field: "blocked", Before: "false", After: "true"})
		e.Reason = out.reason()
		e.Initiator = s.pendingInitiator(ctx, actor, id)
		s.audit(ctx, actor, e)
		s.log.InfoContext(ctx, "user blocked by an administrator", "user_id", id, "sessions_ended", out.Sessions, "tokens_revoked", out.Tokens)
	}
	return out, nil
}

// UnblockUser lets user id sign in again. Event: "user.unblocked" (none
// when the user was not blocked).
func (s *AdminService) UnblockUser(ctx context.Context, actor Actor, id string) error {
	if err := s.authorize(ctx, actor, true); err != nil {
		return err
	}
	changed, err := s.setBlocked(ctx, id, false)
	if err != nil || !changed {
		return err
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: "user.unblocked", TargetUserID: id,
		Changes: []storage.AuditChange{{Field: "blocked", Before: "true", After: "false"}}})
	return nil
}

// setBlocked stores the blocked flag and tells whether it changed.
func (s *AdminService) setBlocked(ctx context.Context, id string, blocked bool) (bool, error) {
	_, err := s.store.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
		if u.Blocked == blocked {
			return u, errNothingChanged
		}
		u.Blocked = blocked
		u.UpdatedAt = s.now()
		return u, nil
	})
	switch {
	case errors.Is(err, errNothingChanged):
		return false, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, errNoSuchUser
	case err != nil:
		return false, fmt.Errorf("set blocked of %q: %w", id, err)
	}
	return true, nil
}

// FactorsRemoved says what ResetSecondFactors removed.
type FactorsRemoved struct {
	TOTP           bool // a confirmed authenticator app (a pending enrolment goes too)
	Passkeys       int
	RecoveryCodes  int // unused codes
	TrustedDevices int
}

func (r FactorsRemoved) any() bool {
	return r.TOTP || r.Passkeys > 0 || r.RecoveryCodes > 0 || r.TrustedDevices > 0
}

// ResetSecondFactors removes every second factor of user id: the TOTP
// secret (and a pending one), passkeys, recovery codes and remembered
// devices. Where two factors are required, the user enrols again at their
// next sign-in. Sessions stay (Keycloak's "remove OTP" does the same).
// Event: "user.second_factors_reset", with each kind's count before and
// after (none when there was nothing to remove).
func (s *AdminService) ResetSecondFactors(ctx context.Context, actor Actor, id string) (FactorsRemoved, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return FactorsRemoved{}, err
	}
	var out FactorsRemoved
	_, err := s.store.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
		out.TOTP, out.RecoveryCodes = HasTOTP(u), len(u.RecoveryCodes)
		if len(u.TOTPSecret)+len(u.TOTPPending)+len(u.RecoveryCodes) == 0 {
			return u, errNothingChanged
		}
		u.TOTPSecret, u.TOTPPending, u.TOTPLastStep, u.RecoveryCodes = nil, nil, 0, nil
		return u, nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return FactorsRemoved{}, errNoSuchUser
	case err != nil && !errors.Is(err, errNothingChanged):
		return FactorsRemoved{}, fmt.Errorf("reset second factors of %q: %w", id, err)
	}
	if out.Passkeys, err = s.store.DeleteCredentials(ctx, id, storage.KindPasskey); err != nil {
		return out, fmt.Errorf("delete passkeys of %q: %w", id, err)
	}
	if out.TrustedDevices, err = s.store.DeleteCredentials(ctx, id, storage.KindTrustedDevice); err != nil {
		return out, fmt.Errorf("forget trusted devices of %q: %w", id, err)
	}
	if !out.any() {
		return out, nil
	}
	count := func(field string, n int) storage.AuditChange {
		return storage.AuditChange{Field: field, Before: strconv.Itoa(n), After: "0"}
	}
	changes := []storage.AuditChange{{Field: "totp", Before: strconv.FormatBool(out.TOTP), After: "false"},
		count("passkeys", out.Passkeys), count("recovery_codes", out.RecoveryCodes), count("trusted_devices", out.TrustedDevices)}
	s.audit(ctx, actor, storage.AuditEvent{Type: "user.second_factors_reset", TargetUserID: id, Changes: changes})
	s.log.InfoContext(ctx, "second factors reset by an administrator", "user_id", id, "totp", out.TOTP,
		"passkeys", out.Passkeys, "recovery_codes", out.RecoveryCodes, "trusted_devices", out.TrustedDevices)
	return out, nil
}

// EndSessions signs user id out everywhere, as Keycloak's "sign out"
// does: every browser session ends and every refresh and access token is
// revoked (in Keycloak those die with the session; here they would
// outlive it). API tokens and app passwords are credentials the user
// made, not sign-ins, and stay. Event: "user.sessions_ended" (none when
// there was nothing to end).
func (s *AdminService) EndSessions(ctx context.Context, actor Actor, id string) (SignedOut, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return SignedOut{}, err
	}
	if _, err := s.loadUser(ctx, id); err != nil {
		return SignedOut{}, err
	}
	out, err := s.signOut(ctx, id)
	if err != nil {
		return out, err
	}
	if out.Sessions+out.Tokens > 0 {
		s.audit(ctx, actor, storage.AuditEvent{Type: "user.sessions_ended", TargetUserID: id, Reason: out.reason()})
	}
	return out, nil
}

// DeleteUser deletes user id with everything of theirs (the store's
// cascade: credentials, tokens, consents, sessions, avatar; the sign-in
// history and the audit log stay). An administrator cannot delete their
// own account here (another administrator can), and the last
// administrator who can act cannot be deleted (Conflict). Event:
// "user.deleted", naming the username and email it had.
func (s *AdminService) DeleteUser(ctx context.Context, actor Actor, id string) error {
	if err := s.authorize(ctx, actor, true); err != nil {
		return err
	}
	if actor.Kind == ActorUser && actor.UserID == id {
		return Errorf(Forbidden, "You cannot delete your own account. Another administrator can.")
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return err
	}
	if err := s.keepAnAdmin(ctx, u, ""); err != nil {
		return err
	}
	s.logoutUser(ctx, id)
	initiator := s.pendingInitiator(ctx, actor, id)
	// The names stay reserved, so a new account cannot inherit this one's
	// identity at apps that key on the username or email.
	err = s.store.DeleteUser(ctx, id, s.now().Add(NameReservation))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errNoSuchUser
	case err != nil:
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	e := userEvent("user.deleted", u,
		storage.AuditChange{Field: "username", Before: u.Username}, storage.AuditChange{Field: "email", Before: u.Email})
	e.Initiator = initiator
	s.audit(ctx, actor, e)
	s.log.InfoContext(ctx, "user deleted by an administrator", "user_id", id)
	return nil
}
