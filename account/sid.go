package account

import (
	"crypto/sha256"
	"encoding/hex"
)

// SessionSID is the sid claim (OpenID Connect Front-Channel and
// Back-Channel Logout 1.0) of the session whose storage ID is sessionID:
// stable for the session's life, the same in every app's ID tokens, and
// safe to hand out. The session's ID finds the session in the store, so it
// never leaves Keyport; sid is derived from it one way, under a label of
// its own, so that it is not the handle the security page uses
// (SessionHandle) either. "" for no session.
func SessionSID(sessionID string) string {
	if sessionID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("keyport oidc sid\x00" + sessionID))
	return hex.EncodeToString(sum[:16])
}
