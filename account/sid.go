package account

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/keyport/keyport/storage"
)

// SessionSID is the sid claim (OpenID Connect Front-Channel and
// Back-Channel Logout 1.0) of the session whose storage ID is sessionID:
// stable for the session's life, the same in every public app's ID
// tokens, and safe to hand out. The session's ID finds the session in the
// store, so it never leaves Keyport; sid is derived from it one way, under
// a label of its own, so that it is not the handle the security page uses
// (SessionHandle) either. "" for no session. Apps use ClientSID.
func SessionSID(sessionID string) string {
	if sessionID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("keyport oidc sid\x00" + sessionID))
	return hex.EncodeToString(sum[:16])
}

// ClientSID is the sid app c knows the session sessionID by, in its ID
// tokens, logout tokens and front-channel logout URI alike. A public app
// gets SessionSID, which every public app shares (as it shares the sub).
// A pairwise app gets a sid of its sector (Subjects): one sid shared
// across sectors would let apps that know a person by unrelated subs
// match them up by the session they signed in through, what pairwise
// subs are there to prevent (OpenID Connect Core 1.0 §8). The sector is
// hashed with the session's secret ID, so no one can compute one sid
// from another.
func ClientSID(c storage.Client, sessionID string) string {
	if !Pairwise(c) || sessionID == "" {
		return SessionSID(sessionID)
	}
	// The sector and session as the pairwise subs' nonces take a sector
	// and user (sectorPair), under a label of the sids' own.
	sum := sha256.Sum256(append([]byte("keyport oidc pairwise sid\x00"), sectorPair(sectorOrApp(c), sessionID)...))
	return hex.EncodeToString(sum[:16])
}
