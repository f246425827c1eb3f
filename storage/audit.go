package storage

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// EncodeAuditEvent checks e as Audit.AppendAudit's contract says, cuts its
// user agent to MaxAuditUserAgent and encodes it. Backends call it before
// any transaction: a refused event must not roll back the writes it would
// share a commit with (a batch, a sign-in's write, an attempt's).
func EncodeAuditEvent(e *AuditEvent) ([]byte, error) {
	if e.ID == "" || e.Type == "" || e.ActorKind == "" || e.Time.IsZero() ||
		!ValidAuditID(e.ID) || !ValidAuditID(e.ActorID) || !ValidAuditID(e.TargetUserID) || !ValidAuditID(e.Initiator) {
		return nil, fmt.Errorf("audit event %q: missing or malformed ID, type, actor kind, time, actor or target: %w",
			TruncateUTF8(e.ID, MaxAuditID), ErrInvalid)
	}
	e.UserAgent = TruncateUTF8(e.UserAgent, MaxAuditUserAgent)
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode audit event %q: %w", e.ID, err)
	}
	if len(raw) > MaxAuditEventBytes {
		return nil, fmt.Errorf("audit event %q takes %d bytes, more than %d: %w", e.ID, len(raw), MaxAuditEventBytes, ErrTooLarge)
	}
	return raw, nil
}

// ValidAuditID tells whether s may be an ID in an audit event: at most
// MaxAuditID bytes, no NUL (which index keys and SQL text cannot hold).
func ValidAuditID(s string) bool {
	return len(s) <= MaxAuditID && !strings.ContainsRune(s, 0)
}

// TruncateUTF8 cuts s to at most n bytes without splitting a character.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
