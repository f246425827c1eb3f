package storage

import (
	"context"
	"fmt"
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

	// Origin is what the request counts under for the per-origin limit
	// (CreateDeviceAuthorization): the address of the device that asked
	// for it, reduced as the throttles reduce it (an IPv6 address to its
	// /64); "" counts under no origin (an authenticated app's backend,
	// which asks for all its users).
	Origin string `json:"origin,omitempty"`

	// Who approved, how and when they had authenticated (set with the
	// decision).
	UserID   string    `json:"user_id,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
	AuthTime time.Time `json:"auth_time,omitempty"`

	// Resources are the resource indicators (RFC 8707) the device asked
	// for at the device authorization endpoint, checked against the app's
	// then: its tokens are for them, as a sign-in's are for those it asked
	// for at /authorize (AuthRequest.Resources). Empty: the app itself.
	Resources []string `json:"resources,omitempty"`
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

// DeviceOriginLimitError refuses a new device authorization because its
// origin holds its limit of requests that have not expired yet. It is an
// ErrLimitReached.
type DeviceOriginLimitError struct {
	Origin string
	Limit  int
	// FreeAt is when the origin's first request expires, making room.
	FreeAt time.Time
}

func (e *DeviceOriginLimitError) Error() string {
	return fmt.Sprintf("%d device authorizations of %s not expired yet (until %s)", e.Limit, e.Origin, e.FreeAt.UTC().Format(time.RFC3339))
}

func (e *DeviceOriginLimitError) Unwrap() error { return ErrLimitReached }

// DeviceAuthorizations persists the requests of the device authorization
// grant. They are short-lived: a backup does not copy them.
type DeviceAuthorizations interface {
	// CreateDeviceAuthorization stores a new request. A taken
	// DeviceCodeHash or UserCode gives ErrConflict; an empty one, or an
	// empty ClientID, ErrInvalid. When perOrigin > 0 and d.Origin is
	// not empty, perOrigin requests of d.Origin that have not expired
	// (ExpiresAt after the store's clock) give a *DeviceOriginLimitError;
	// concurrent creates never pass it. With MaxDeviceAuthorizations
	// stored already, the one whose keeping time ends first is deleted to
	// make room if it has expired; if none has, ErrLimitReached.
	CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization, perOrigin int) error
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
