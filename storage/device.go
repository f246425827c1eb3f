package storage

import (
	"context"
	"time"
)

// DeviceAuthorization is one request of the device authorization grant
// (RFC 8628): a device (a TV, a command-line tool) asked for tokens, shows
// the person a user code, and polls with the device code while the person
// approves or denies it on another screen. It lives for minutes.
type DeviceAuthorization struct {
	// DeviceCodeHash is the hex SHA-256 of the device code; the key.
	DeviceCodeHash string `json:"device_code_hash"`
	// UserCode is what the person types, normalised (upper case, no
	// dashes); unique among the stored requests.
	UserCode string   `json:"user_code"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes,omitempty"`
	// State is DevicePending until the person decides, then
	// DeviceApproved or DeviceDenied; DeviceRedeemed once the device got
	// its tokens.
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the codes stop working; the store forgets the
	// record DeviceAuthorizationKept later.
	ExpiresAt time.Time `json:"expires_at"`
	// Interval is the least time between two polls; it grows each time
	// the device polls faster (slow_down, RFC 8628 §3.5).
	Interval time.Duration `json:"interval"`
	// LastPoll is when the device last polled (zero: never).
	LastPoll time.Time `json:"last_poll,omitempty"`

	// Who approved, how and when they had authenticated (set with the
	// decision).
	UserID   string    `json:"user_id,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
	AuthTime time.Time `json:"auth_time,omitempty"`
}

// States of a DeviceAuthorization.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceRedeemed = "redeemed"
)

// DeviceAuthorizationKept is how long after its ExpiresAt a device
// authorization is kept, so that a device polling late is told
// expired_token rather than that its code is unknown.
const DeviceAuthorizationKept = 10 * time.Minute

// MaxDeviceAuthorizations bounds the device authorizations stored at once:
// an app's client ID is no secret for a public app, so anyone may start
// them, and each is kept for minutes.
const MaxDeviceAuthorizations = 10000

// DeviceAuthorizations persists the requests of the device authorization
// grant. They are short-lived: a backup does not copy them.
type DeviceAuthorizations interface {
	// CreateDeviceAuthorization stores a new request. A taken
	// DeviceCodeHash or UserCode gives ErrConflict; an empty one, or an
	// empty ClientID, ErrInvalid; MaxDeviceAuthorizations stored already
	// (expired ones not yet swept count) ErrLimitReached.
	CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) error
	// GetDeviceAuthorizationByUserCode finds a stored request by its user
	// code (normalised), expired or not; ErrNotFound when there is none.
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (DeviceAuthorization, error)
	// UpdateDeviceAuthorization applies fn to the request stored under
	// deviceCodeHash and stores the result, in one transaction, and
	// returns it. fn may run more than once and may not change
	// DeviceCodeHash or UserCode; an error from fn changes nothing and is
	// returned. ErrNotFound when there is no such request.
	UpdateDeviceAuthorization(ctx context.Context, deviceCodeHash string, fn func(DeviceAuthorization) (DeviceAuthorization, error)) (DeviceAuthorization, error)
}
