package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// The device authorization grant (RFC 8628): a device shows a user code,
// and a signed-in person approves or denies it on the portal's /device
// page. DeviceFlow holds the rules of that page; the provider serves the
// endpoints the device talks to.

// Events of the device flow in the audit log.
const (
	// EventDeviceApproved: a person let a device sign in to an app as
	// them (ClientID; the scopes in Changes).
	EventDeviceApproved = "device.approved"
	// EventDeviceDenied: a person refused a device's request, or was not
	// allowed the app.
	EventDeviceDenied = "device.denied"
)

// UserCodeAlphabet and UserCodeLength are the user codes Keyport makes:
// eight letters without vowels (RFC 8628 §6.1: 20^8, about 34 bits, with
// guessing throttled), shown as two groups of four.
const (
	UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	UserCodeLength   = 8
)

// NormalizeUserCode turns what a person typed into a stored user code:
// upper case, without the dash, spaces or other punctuation people add.
// It is "" for anything that cannot be a user code, which then costs no
// store read (but still a guess).
func NormalizeUserCode(typed string) string {
	if len(typed) > 64 {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case strings.ContainsRune(UserCodeAlphabet, r):
			b.WriteRune(r)
		case r == '-' || r == ' ' || r == '.' || r == '\t':
		default:
			return ""
		}
	}
	if b.Len() != UserCodeLength {
		return ""
	}
	return b.String()
}

// FormatUserCode shows a stored user code as people read it: "BCDF-GHJK".
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// DeviceStore is the part of storage DeviceFlow needs.
type DeviceStore interface {
	storage.DeviceAuthorizations
	storage.Clients
	GetGrant(ctx context.Context, userID, clientID string) (storage.Grant, error)
	PutGrant(ctx context.Context, g storage.Grant, e *storage.AuditEvent, out ...storage.OutboxMessage) error
}

// DeviceFlow decides device authorizations for the people signed in at the
// portal.
type DeviceFlow struct {
	*core
	store    DeviceStore
	sessions *SignInService
}

// NewDeviceFlow returns the device flow's rules over store.
func NewDeviceFlow(store DeviceStore, acct *Service) *DeviceFlow {
	return &DeviceFlow{core: acct.core, store: store, sessions: acct.SignIn}
}

// DeviceRequest is a device authorization waiting for its person, with the
// app that asks.
type DeviceRequest struct {
	Auth   storage.DeviceAuthorization
	Client storage.Client
}

// ErrUserCodeUnknown refuses a user code that is wrong, expired or decided
// already: one answer for all, so a guess learns nothing more.
var ErrUserCodeUnknown = Errorf(NotFound, "This code is wrong, has expired or was used already. Check the code your device shows, or start again on the device.")

const msgTooManyUserCodes = "Too many wrong codes."

// Find looks up the pending request whose user code u typed, from ip.
// Each look-up is a guess for the throttle (per person and per address):
// a code that finds nothing counts as a failure. ErrUserCodeUnknown for a
// wrong, expired or decided code; RateLimited when too many were wrong.
func (d *DeviceFlow) Find(ctx context.Context, u storage.User, ip, typed string) (DeviceRequest, error) {
	res, err := d.limiter.UserCode(ctx, u.ID, ip)
	if err != nil {
		return DeviceRequest{}, d.refused(ctx, err, msgTooManyUserCodes, "device_user_code", u.Username, ip)
	}
	req, found, err := d.lookup(ctx, NormalizeUserCode(typed))
	if err != nil {
		res.Cancel()
		return DeviceRequest{}, err
	}
	if !found {
		trips, ferr := res.Fail(ctx)
		if ferr != nil {
			d.log.ErrorContext(ctx, "count a wrong user code", "err", ferr)
		}
		d.log.WarnContext(ctx, "device user code wrong", "client_ip", ip, "client_net", throttle.Address(ip), "user_id", u.ID)
		for _, t := range trips {
			d.log.WarnContext(ctx, "device user codes throttled", "client_ip", ip, "client_net", throttle.Address(ip), "user_id", u.ID, "limit", t.Scope, "retry_after", t.For)
		}
		return DeviceRequest{}, ErrUserCodeUnknown
	}
	if err := res.Succeed(ctx); err != nil {
		d.log.ErrorContext(ctx, "end a user-code check", "err", err)
	}
	return req, nil
}

// lookup finds the live, pending request of code and its app, which must
// exist and not be held for approval.
func (d *DeviceFlow) lookup(ctx context.Context, code string) (DeviceRequest, bool, error) {
	if code == "" {
		return DeviceRequest{}, false, nil
	}
	a, err := d.store.GetDeviceAuthorizationByUserCode(ctx, code)
	if errors.Is(err, storage.ErrNotFound) {
		return DeviceRequest{}, false, nil
	}
	if err != nil {
		return DeviceRequest{}, false, fmt.Errorf("load device authorization: %w", err)
	}
	if a.State != storage.DevicePending || !d.now().Before(a.ExpiresAt) {
		return DeviceRequest{}, false, nil
	}
	c, err := GetLiveClient(ctx, d.store, a.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return DeviceRequest{}, false, nil // deleted, or held for approval, since the code was issued
	}
	if err != nil {
		return DeviceRequest{}, false, fmt.Errorf("load client %q of a device authorization: %w", a.ClientID, err)
	}
	return DeviceRequest{Auth: a, Client: c}, true, nil
}

// Decide approves (approve) or denies the pending request whose user code
// the person signed in with sess typed, from ip. It applies the rules a
// sign-in to the app through the code flow applies: the account's IP
// allowlist (a refusal is recorded like a refused sign-in, and changes
// nothing) and the app's allowed groups (a person not allowed denies the
// request, as the code flow answers access_denied). An approval keeps the
// scopes as a grant (as consent does) with its audit event; a denial is
// audited too.
func (d *DeviceFlow) Decide(ctx context.Context, sess storage.Session, u storage.User, ip, userAgent, typed string, approve bool) (DeviceRequest, error) {
	req, err := d.Find(ctx, u, ip, typed)
	if err != nil {
		return req, err
	}
	if approve {
		if err := d.sessions.CheckNetworkAt(ctx, u, ip, userAgent, sess.AMR); err != nil {
			return req, err
		}
	}
	refusal := MayUseClient(u, req.Client)
	if refusal != nil {
		approve = false
	}
	state := storage.DeviceDenied
	if approve {
		state = storage.DeviceApproved
	}
	_, err = d.store.UpdateDeviceAuthorization(ctx, req.Auth.DeviceCodeHash, func(a storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
		if a.State != storage.DevicePending || !d.now().Before(a.ExpiresAt) {
			return a, ErrUserCodeUnknown // decided or expired meanwhile
		}
		a.State = state
		if approve {
			a.UserID, a.AMR, a.AuthTime = u.ID, slices.Clone(sess.AMR), sess.AuthTime
		}
		return a, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return req, ErrUserCodeUnknown
	}
	if err != nil {
		return req, err
	}
	if !approve {
		d.audit(ctx, userActor(u.ID), storage.AuditEvent{Type: EventDeviceDenied, TargetUserID: u.ID, ClientID: req.Client.ID})
		d.log.InfoContext(ctx, "device authorization denied", "user_id", u.ID, "client_id", req.Client.ID, "not_allowed", refusal != nil)
		return req, refusal
	}
	if err := d.keepGrant(ctx, u.ID, req); err != nil {
		return req, err
	}
	d.log.InfoContext(ctx, "device authorization approved", "user_id", u.ID, "client_id", req.Client.ID)
	return req, nil
}

// keepGrant adds the approved scopes to the person's grant to the app, in
// one commit with the approval's audit event: the app is then listed among
// the person's apps, where they can withdraw it.
func (d *DeviceFlow) keepGrant(ctx context.Context, userID string, req DeviceRequest) error {
	now := d.now()
	g, err := d.store.GetGrant(ctx, userID, req.Client.ID)
	if errors.Is(err, storage.ErrNotFound) {
		g, err = storage.Grant{UserID: userID, ClientID: req.Client.ID, CreatedAt: now}, nil
	}
	if err != nil {
		return fmt.Errorf("load grant of %q to %q: %w", userID, req.Client.ID, err)
	}
	for _, sc := range req.Auth.Scopes {
		if !slices.Contains(g.Scopes, sc) {
			g.Scopes = append(g.Scopes, sc)
		}
	}
	g.UpdatedAt = now
	e := d.auditEvent(ctx, userActor(userID), storage.AuditEvent{Type: EventDeviceApproved, TargetUserID: userID, ClientID: req.Client.ID,
		Changes: []storage.AuditChange{{Field: "scopes", After: strings.Join(req.Auth.Scopes, " ")}}})
	out := d.reactions(ctx, e)
	if err := d.store.PutGrant(ctx, g, &e, out...); err != nil {
		return fmt.Errorf("store grant of %q to %q: %w", userID, req.Client.ID, err)
	}
	d.reacted(out)
	return nil
}
