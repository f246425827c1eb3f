package account

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/keyport/keyport/storage"
)

// The security events this package writes to the audit log (the Type of
// storage.AuditEvent). Other files add the events of their own areas.
const (
	// EventSignInSucceeded: someone signed in (any method, browser or
	// forward auth); Method says how.
	EventSignInSucceeded = "signin.succeeded"
	// EventSignInFailed: a sign-in attempt failed; Reason says why, Login
	// is the name as typed (cut like the log's), Method how.
	EventSignInFailed = "signin.failed"
	// EventPasswordChanged: a user's password was changed (by them, or set
	// from the command line).
	EventPasswordChanged = "password.changed"
	// EventTOTPEnabled: an authenticator app was confirmed.
	EventTOTPEnabled = "totp.enabled"
	// EventTOTPDisabled: the authenticator app was turned off.
	EventTOTPDisabled = "totp.disabled"
	// EventPasskeyAdded: a passkey was registered.
	EventPasskeyAdded = "passkey.added"
	// EventPasskeyRemoved: a passkey was deleted.
	EventPasskeyRemoved = "passkey.removed"
	// EventRecoveryCodesRegenerated: new recovery codes replaced the old.
	EventRecoveryCodesRegenerated = "recovery_codes.regenerated"
	// EventAPITokenCreated: an API token was created (its name, never it).
	EventAPITokenCreated = "api_token.created"
	// EventAPITokenRevoked: an API token was revoked.
	EventAPITokenRevoked = "api_token.revoked"
	// EventAppPasswordCreated: an app password was created.
	EventAppPasswordCreated = "app_password.created"
	// EventAppPasswordRevoked: an app password was revoked.
	EventAppPasswordRevoked = "app_password.revoked"
	// EventConsentGranted: a user allowed an app scopes.
	EventConsentGranted = "consent.granted"
	// EventConsentRevoked: a user withdrew an app's consent.
	EventConsentRevoked = "consent.revoked"
	// EventSessionsEnded: every session of a user was ended ("sign out
	// everywhere").
	EventSessionsEnded = "sessions.ended"
	// EventSessionEnded: a user signed out one of their browsers.
	EventSessionEnded = "session.ended"
	// EventUserBlocked: a user was blocked (by an admin or their directory).
	EventUserBlocked = "user.blocked"
	// EventUserUnblocked: a user was unblocked.
	EventUserUnblocked = "user.unblocked"
	// EventUserEmailVerified: an admin set or cleared email_verified.
	EventUserEmailVerified = "user.email_verified"
	// EventDirectoryCreated: a directory was added on the admin page.
	EventDirectoryCreated = "directory.created"
	// EventDirectoryUpdated: a stored directory's settings were changed.
	EventDirectoryUpdated = "directory.updated"
	// EventDirectoryDeleted: a stored directory was removed.
	EventDirectoryDeleted = "directory.deleted"
	// EventDirectoryEnabled: a directory was turned back on.
	EventDirectoryEnabled = "directory.enabled"
	// EventDirectoryDisabled: a directory was turned off.
	EventDirectoryDisabled = "directory.disabled"
	// EventDirectorySynced: a directory's users were synchronised.
	EventDirectorySynced = "directory.synced"
	// EventClientCreated: an app (OIDC client) was registered.
	EventClientCreated = "client.created"
	// EventClientDeleted: an app was deleted.
	EventClientDeleted = "client.deleted"
)

// ActorAnonymous is the actor of a failed sign-in: someone not (yet)
// signed in. The account they tried is the event's target.
const ActorAnonymous = "anonymous"

// attemptEvent is the audit event of a sign-in attempt: who tried which
// account, how, from where, and why it failed. Its actor is the account
// on success and nobody known on failure.
func (s *core) attemptEvent(ctx context.Context, a storage.LoginAttempt) storage.AuditEvent {
	actor, typ := Actor{Kind: ActorAnonymous}, EventSignInFailed
	if a.Success {
		actor, typ = userActor(a.UserID), EventSignInSucceeded
	}
	return s.auditEvent(ctx, actor, storage.AuditEvent{
		Type: typ, TargetUserID: a.UserID, IP: a.IP, UserAgent: a.UserAgent,
		Reason: a.Reason, Method: a.Method, Login: LogName(a.Login),
	})
}

// blockEvent is the event of blocking (or unblocking) a user.
func blockEvent(blocked bool) string {
	if blocked {
		return EventUserBlocked
	}
	return EventUserUnblocked
}

// switchEvent is the event of turning a directory off (or on).
func switchEvent(disabled bool) string {
	if disabled {
		return EventDirectoryDisabled
	}
	return EventDirectoryEnabled
}

// credentialNamed describes a credential in an event by its name (and
// never its secret or hash).
func credentialNamed(c storage.Credential) []storage.AuditChange {
	return []storage.AuditChange{{Field: "name", After: c.Name}}
}

// revokedEvent is the event of revoking a credential of each kind that
// has one.
var revokedEvent = map[string]string{
	storage.KindAPIToken:    EventAPITokenRevoked,
	storage.KindAppPassword: EventAppPasswordRevoked,
}

// settingsChanges lists the settings of a stored directory that a save
// changed, before and after (for a new one, after only). Stored settings
// never hold the secret (it is sealed apart); that it changed is noted
// without its value.
func settingsChanges(old, nu storage.Directory) []storage.AuditChange {
	var before, after map[string]json.RawMessage
	_ = json.Unmarshal(old.Settings, &before) // absent for a new directory
	if err := json.Unmarshal(nu.Settings, &after); err != nil {
		return nil
	}
	var out []storage.AuditChange
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if b, a := string(before[k]), string(after[k]); b != a {
			out = append(out, storage.AuditChange{Field: k, Before: b, After: a})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			out = append(out, storage.AuditChange{Field: k, Before: string(before[k])})
		}
	}
	if !bytes.Equal(old.SealedSecret, nu.SealedSecret) {
		out = append(out, storage.AuditChange{Field: "secret", After: "(changed)"})
	}
	return out
}
