package account

// WebhookEventTypes are the event types Keyport writes to the audit log
// and so sends to webhooks, in the order the forms list them. A hook's
// filter may name only these (a typo would otherwise make a hook that
// never fires); TestWebhookEventTypesAreComplete keeps the list in step
// with the events the package writes.
var WebhookEventTypes = []string{
	"user.created", "user.updated", "user.deleted", "user.blocked", "user.unblocked",
	"user.email_verified", "user.email_verification_sent", "user.email_change_requested", "user.email_confirmed", "user.recovery_email_confirmed",
	"user.invitation_accepted", "user.invitation_expired",
	"user.password_reset_requested", "user.password_reset_link_created", "user.password_reset_link_expired", "user.password_reset", "user.password_set",
	"user.second_factors_reset", "user.sessions_ended",
	"users.imported", "users.exported",
	"signin.succeeded", "signin.failed", "session.ended", "sessions.ended",
	"password.changed", "totp.enabled", "totp.disabled", "passkey.added", "passkey.removed", "recovery_codes.regenerated",
	"api_token.created", "api_token.revoked", "app_password.created", "app_password.revoked",
	"consent.granted", "consent.revoked",
	"client.created", "client.updated", "client.secret_rotated", "client.deleted",
	"group.created", "group.updated", "group.renamed", "group.deleted", "group.member_added", "group.member_removed",
	"directory.created", "directory.updated", "directory.deleted", "directory.enabled", "directory.disabled", "directory.synced",
	"settings.updated", "outbox.retried",
	EventWebhookCreated, EventWebhookUpdated, EventWebhookDeleted, EventWebhookDisabled, EventWebhookEnabled, EventWebhookSecretRotated,
	EventDeviceApproved, EventDeviceDenied,
	AuditInitialAccessTokenCreated, AuditInitialAccessTokenRevoked, AuditClientRegistered, AuditClientApproved,
}
