package provider

// Observer is told of what the token endpoint does, for metrics. Its
// methods are called on the request's goroutine: they must be quick and
// safe for concurrent use.
type Observer interface {
	// TokenIssued: the token endpoint answered 200 to a grant of this
	// type (one of the grant types Keyport offers).
	TokenIssued(grantType string)
	// RefreshTokenReused: a rotated refresh token came back after its
	// grace, and its family was revoked.
	RefreshTokenReused()
	// Throttled: an attempt was refused before it was checked;
	// "client_secret" for client authentication.
	Throttled(method string)
}
